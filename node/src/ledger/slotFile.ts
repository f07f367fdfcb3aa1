import { constants } from "node:fs";
import { type FileHandle, open, readFile } from "node:fs/promises";
import { CustosError, crc32c } from "@custos/utils";
import type { LedgerErrorCode } from "./errors.js";

/**
 * A small record kept in a file of two fixed slots, written alternately in place: a write that
 * a crash tears damages only the slot being written, and the other still holds the previous
 * record. Each slot: magic (8 bytes), sequence (u32 BE), payload length (u8), payload (up to
 * 47 bytes), CRC-32C of everything before it (u32 BE); 64 bytes.
 */
const SLOT = 64;
const MAX_PAYLOAD = SLOT - 8 - 4 - 1 - 4;

export type SlotRead =
  | { state: "missing" }
  | { state: "damaged" }
  | { state: "ok"; payload: Uint8Array; sequence: number };

export class SlotFile {
  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly magic: Uint8Array,
    private sequence: number,
  ) {}

  /** Reads the newest intact slot of `path` without creating anything. */
  static async read(path: string, magic: string): Promise<SlotRead> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      if ((err as { code?: string }).code === "ENOENT") return { state: "missing" };
      throw err;
    }
    const m = new TextEncoder().encode(magic);
    let best: { payload: Uint8Array; sequence: number } | undefined;
    for (let s = 0; s + SLOT <= bytes.length && s < 2 * SLOT; s += SLOT) {
      const slot = bytes.subarray(s, s + SLOT);
      const dv = new DataView(slot.buffer, slot.byteOffset, SLOT);
      const len = slot[12] as number;
      if (len > MAX_PAYLOAD) continue;
      if (!slot.subarray(0, 8).every((b, i) => b === m[i])) continue;
      if (crc32c(slot.subarray(0, 13 + len)) !== dv.getUint32(13 + len)) continue;
      const sequence = dv.getUint32(8);
      if (!best || sequence > best.sequence) best = { payload: slot.slice(13, 13 + len), sequence };
    }
    if (best) return { state: "ok", ...best };
    return bytes.length === 0 ? { state: "missing" } : { state: "damaged" };
  }

  /** Opens (creating) the file for writing after `read` gave `sequence` (0 for a new file). */
  static async open(path: string, magic: string, sequence: number): Promise<SlotFile> {
    const fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o600);
    const m = new TextEncoder().encode(magic);
    if (m.length !== 8) throw new Error("slot file magic must be 8 bytes");
    return new SlotFile(fh, path, m, sequence);
  }

  /** Writes `payload` into the slot not holding the newest record; `sync` makes it durable first. */
  async write(payload: Uint8Array, sync: boolean): Promise<void> {
    if (payload.length > MAX_PAYLOAD) throw new Error("slot payload too large");
    const seq = this.sequence + 1;
    const slot = new Uint8Array(SLOT);
    const dv = new DataView(slot.buffer);
    slot.set(this.magic, 0);
    dv.setUint32(8, seq);
    slot[12] = payload.length;
    slot.set(payload, 13);
    dv.setUint32(13 + payload.length, crc32c(slot.subarray(0, 13 + payload.length)));
    try {
      await this.fh.write(slot, 0, SLOT, (seq % 2) * SLOT);
      if (sync) await this.fh.datasync();
    } catch (cause) {
      throw new CustosError<LedgerErrorCode>(
        "DISK_WRITE_FAILED",
        `cannot write ${this.path}`,
        { path: this.path },
        { cause },
      );
    }
    this.sequence = seq;
  }

  async sync(): Promise<void> {
    await this.fh.datasync();
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
