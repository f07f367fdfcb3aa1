import { constants } from "node:fs";
import { type FileHandle, open, readdir, readFile, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { decode, encode, fieldAt, readArray, readBytes } from "@custos/codec";
import { LIMITS, type SignedTx } from "@custos/types";
import { CustosError, crc32c, errorMessage, type Logger } from "@custos/utils";

/**
 * The transactions of the block this validator last proposed or voted for, on disk (HOME/data/
 * consensus.txs.0 and .1) until the next one replaces them.
 *
 * A proposal names its transactions by hash, and the consensus WAL keeps the proposal as it
 * came: the transactions themselves live in the pools, which a crash empties. When every
 * validator crashed after voting for a block and before committing it, each one restarts bound
 * by its votes to that block and unable to assemble it: nobody holds its transactions any more,
 * and the chain stops for good (seen once as "no commit within 60 s" after all four validators
 * were killed at ledger.commit.beforeWrite). A leader writes its block's transactions here before
 * its proposal leaves, a replica after it checked a proposal; on start they go back into the pool.
 *
 * Two files, `consensus.txs.0` and `.1`, written in turn and kept open: a record (magic, sequence,
 * length, CRC-32C, the encoded list) goes over the older one with one write and one fdatasync,
 * so the newest intact record always survives a torn write. (Until issue 14 a temp file was
 * written, synced, renamed and its directory synced for every block: eight file operations on
 * the leader's critical path.) A `consensus.txs` of an earlier version is read when no record is.
 */
const MAGIC = new TextEncoder().encode("CUSTOSPT");
/** magic(8) || sequence(u32) || length(u32) || crc32c(sequence..payload)(u32), then the payload. */
const HEADER = 20;

export class ProposalTxs {
  private saving: Promise<void> = Promise.resolve();
  /** The newest intact record's sequence, once the files were read (0: none). */
  private seq: number | undefined;
  private handles: FileHandle[] | undefined;
  private legacyLeft = true;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  private slotPath(i: number): string {
    return `${this.file}.${i}`;
  }

  /** Replaces the kept transactions with these, durably; in order of calls. */
  save(txs: readonly SignedTx[]): Promise<void> {
    const run = this.saving.then(() => this.write(encode(txs.map((t) => t.bytes))));
    this.saving = run.catch(() => {});
    return run;
  }

  private async write(payload: Uint8Array): Promise<void> {
    try {
      if (this.seq === undefined) this.seq = (await this.newest())?.seq ?? 0;
      const handles = this.handles ?? (await this.openSlots());
      const seq = this.seq + 1;
      const record = new Uint8Array(HEADER + payload.length);
      const dv = new DataView(record.buffer);
      record.set(MAGIC, 0);
      dv.setUint32(8, seq);
      dv.setUint32(12, payload.length);
      record.set(payload, HEADER);
      dv.setUint32(16, crc32c(payload, crc32c(record.subarray(8, 16))));
      const fh = handles[seq % 2] as FileHandle;
      await fh.write(record, 0, record.length, 0);
      await fh.datasync();
      this.seq = seq;
    } catch (cause) {
      // a fault of the consensus WAL's kind: the node stops with it (a full disk, a read-only one)
      throw new CustosError(
        "WAL_WRITE_FAILED",
        `cannot keep the proposal's transactions in ${this.file}.0/.1`,
        {},
        { cause },
      );
    }
    if (this.legacyLeft) {
      // an earlier version's file would only be read when no record is; it is stale now
      this.legacyLeft = false;
      await rm(this.file, { force: true }).catch(() => {});
    }
  }

  /** Opens (creating) both files; a file made here is made durable with its directory. */
  private async openSlots(): Promise<FileHandle[]> {
    const handles: FileHandle[] = [];
    for (const i of [0, 1])
      handles.push(await open(this.slotPath(i), constants.O_RDWR | constants.O_CREAT, 0o600));
    const dir = await open(dirname(this.file), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.handles = handles;
    return handles;
  }

  /** The newest intact record of the two files, if any. */
  private async newest(): Promise<{ seq: number; payload: Uint8Array } | undefined> {
    let best: { seq: number; payload: Uint8Array } | undefined;
    for (const i of [0, 1]) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(this.slotPath(i));
      } catch {
        continue;
      }
      if (bytes.length < HEADER || !MAGIC.every((b, k) => bytes[k] === b)) continue;
      const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const seq = dv.getUint32(8);
      const len = dv.getUint32(12);
      if (HEADER + len > bytes.length) continue;
      const payload = bytes.subarray(HEADER, HEADER + len);
      if (crc32c(payload, crc32c(bytes.subarray(8, 16))) !== dv.getUint32(16)) continue;
      if (!best || seq > best.seq) best = { seq, payload };
    }
    return best;
  }

  /** The signed bytes the last run left (none when there is none; a damaged record is reported and ignored). */
  async load(): Promise<Uint8Array[]> {
    // temp files of an earlier version's interrupted writes
    const prefix = `${basename(this.file)}.tmp-`;
    for (const name of await readdir(dirname(this.file)).catch(() => [] as string[]))
      if (name.startsWith(prefix)) await rm(join(dirname(this.file), name), { force: true });
    const newest = await this.newest();
    this.seq ??= newest?.seq ?? 0;
    let bytes: Uint8Array;
    if (newest) bytes = newest.payload;
    else {
      try {
        bytes = await readFile(this.file);
      } catch {
        return [];
      }
    }
    try {
      const S = "ProposalTxs";
      return readArray(decode(bytes, S, LIMITS.maxBlockBytes), fieldAt(S, ""), {
        min: 0,
        max: 100_000,
      }).map((t, i) => readBytes(t, fieldAt(S, `[${i}]`), { max: 1024 * 1024 }));
    } catch (err) {
      this.log.warn("the last proposal's transactions could not be read; going on without them", {
        file: this.file,
        error: errorMessage(err),
      });
      return [];
    }
  }

  async close(): Promise<void> {
    await this.saving;
    const handles = this.handles ?? [];
    this.handles = undefined;
    await Promise.all(handles.map((h) => h.close()));
  }
}
