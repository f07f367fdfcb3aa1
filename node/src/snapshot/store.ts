import { existsSync } from "node:fs";
import { mkdir, open, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { decodeBlock } from "@custos/types";
import { bytesEqual, CustosError, errorMessage, type Logger, toHex } from "@custos/utils";
import type { Ledger } from "../ledger/ledger.js";
import {
  chunkDigest,
  decodeSnapshotMeta,
  encodeChunk,
  encodeSnapshotMeta,
  type SnapshotErrorCode,
  type SnapshotMeta,
  snapshotName,
} from "./snapshot.js";

/**
 * A snapshot file (`data/snapshots/<height>.snap`):
 *
 *     "CUSTSNAP" | chunk 0 | chunk 1 | ... | meta | table | trailer
 *
 * table: per chunk its offset (u64) and length (u32); trailer (32 bytes): meta offset (u64),
 * meta length (u32), chunk count (u32), table offset (u64), "CUSTSNAP". Written to a temporary
 * name, synced, then renamed: a file under its final name is whole.
 */
const MAGIC = Buffer.from("CUSTSNAP");
const TRAILER = 32;
/** A chunk closes once it holds this many bytes of entries. */
export const CHUNK_BYTES = 1024 * 1024;

export interface SnapshotConfig {
  /** Take a snapshot every `interval` blocks (0: never). */
  interval: number;
  /** How many snapshot files to keep (the newest). */
  keep: number;
}

/** What a snapshot took: its height, file, state entries, chunks and size. */
export interface Taken {
  height: number;
  file: string;
  entries: number;
  chunks: number;
  bytes: number;
}

interface Held {
  height: number;
  path: string;
  meta: SnapshotMeta;
  metaBytes: Uint8Array;
  table: { offset: number; length: number }[];
}

async function readHeld(path: string): Promise<Held> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    if (size < MAGIC.length + TRAILER) throw new Error("too short");
    const t = Buffer.alloc(TRAILER);
    await fh.read(t, 0, TRAILER, size - TRAILER);
    if (!t.subarray(24).equals(MAGIC)) throw new Error("no trailer");
    const metaOffset = Number(t.readBigUInt64BE(0));
    const metaLength = t.readUInt32BE(8);
    const count = t.readUInt32BE(12);
    const tableOffset = Number(t.readBigUInt64BE(16));
    if (metaOffset + metaLength > size || tableOffset + 12 * count + TRAILER !== size)
      throw new Error("bad trailer");
    const metaBytes = Buffer.alloc(metaLength);
    await fh.read(metaBytes, 0, metaLength, metaOffset);
    const tableBytes = Buffer.alloc(12 * count);
    await fh.read(tableBytes, 0, tableBytes.length, tableOffset);
    const table = Array.from({ length: count }, (_, i) => ({
      offset: Number(tableBytes.readBigUInt64BE(12 * i)),
      length: tableBytes.readUInt32BE(12 * i + 8),
    }));
    const meta = decodeSnapshotMeta(metaBytes);
    if (meta.chunks.length !== count) throw new Error("chunk table and meta disagree");
    return { height: meta.height, path, meta, metaBytes, table };
  } finally {
    await fh.close();
  }
}

/** A snapshot file's meta and chunks (for tools and tests; nodes serve chunks from the file). */
export async function readSnapshotFile(path: string): Promise<{ meta: SnapshotMeta; chunks: Uint8Array[] }> {
  const held = await readHeld(path);
  const fh = await open(path, "r");
  try {
    const chunks: Uint8Array[] = [];
    for (const t of held.table) {
      const b = Buffer.alloc(t.length);
      await fh.read(b, 0, t.length, t.offset);
      chunks.push(b);
    }
    return { meta: held.meta, chunks };
  } finally {
    await fh.close();
  }
}

/** Writes a snapshot file whole (temporary name, sync, rename). */
export async function writeSnapshotFile(
  path: string,
  meta: SnapshotMeta,
  chunks: Uint8Array[],
): Promise<void> {
  const table: { offset: number; length: number }[] = [];
  const parts: Uint8Array[] = [MAGIC];
  let pos = MAGIC.length;
  for (const c of chunks) {
    table.push({ offset: pos, length: c.byteLength });
    parts.push(c);
    pos += c.byteLength;
  }
  const metaBytes = encodeSnapshotMeta(meta);
  parts.push(metaBytes, tableAndTrailer(table, pos, metaBytes.byteLength));
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(Buffer.concat(parts));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

function tableAndTrailer(
  table: { offset: number; length: number }[],
  metaOffset: number,
  metaLength: number,
): Uint8Array {
  const out = Buffer.alloc(12 * table.length + TRAILER);
  table.forEach((t, i) => {
    out.writeBigUInt64BE(BigInt(t.offset), 12 * i);
    out.writeUInt32BE(t.length, 12 * i + 8);
  });
  const tr = 12 * table.length;
  out.writeBigUInt64BE(BigInt(metaOffset), tr);
  out.writeUInt32BE(metaLength, tr + 8);
  out.writeUInt32BE(table.length, tr + 12);
  out.writeBigUInt64BE(BigInt(metaOffset + metaLength), tr + 16);
  MAGIC.copy(out, tr + 24);
  return out;
}

/**
 * This node's state snapshots: taken every `interval` blocks right after the commit (the state is
 * read from a LevelDB snapshot taken at that moment, while the next block executes), the newest
 * `keep` kept, and served to peers (sync protocol: snapshots, snapshotMeta, snapshotChunk). A
 * chunk is checked against its digest before it is served: a damaged file is dropped, never sent.
 */
export class SnapshotStore {
  private readonly held = new Map<number, Held>();
  private busy: Promise<Taken> | undefined;
  private stopped = false;

  constructor(
    private readonly dir: string,
    private readonly config: SnapshotConfig,
    private readonly ledger: Ledger,
    private readonly chainId: string,
    private readonly log: Logger,
  ) {}

  /** Reads the snapshots on disk (a damaged or foreign one is set aside with a warning). */
  async open(): Promise<this> {
    if (!existsSync(this.dir)) return this;
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith(".tmp")) {
        await rm(path, { force: true });
        continue;
      }
      if (!name.endsWith(".snap")) continue;
      try {
        const h = await readHeld(path);
        if (h.meta.chainId !== this.chainId || snapshotName(h.height) !== name)
          throw new Error("not this chain's, or misnamed");
        this.held.set(h.height, h);
      } catch (err) {
        this.log.warn("snapshot file unusable; set aside", { file: path, error: errorMessage(err) });
        await rename(path, `${path}.bad`).catch(() => {});
      }
    }
    return this;
  }

  /** Heights of the snapshots held, newest first. */
  heights(): number[] {
    return [...this.held.keys()].sort((a, b) => b - a);
  }

  /** What an operator sees of each snapshot held, newest first. */
  list(): { height: number; file: string; entries: number; chunks: number; blockHash: string }[] {
    return this.heights().map((h) => {
      const held = this.held.get(h) as Held;
      return {
        height: h,
        file: held.path,
        entries: held.meta.entries,
        chunks: held.meta.chunks.length,
        blockHash: `0x${toHex(decodeBlock(held.meta.block).hash)}`,
      };
    });
  }

  metaBytes(height: number): Uint8Array | undefined {
    return this.held.get(height)?.metaBytes;
  }

  /** Chunk `index` of the snapshot at `height`, checked against its digest first. */
  async chunk(height: number, index: number): Promise<Uint8Array | undefined> {
    const h = this.held.get(height);
    const at = h?.table[index];
    if (!h || !at) return undefined;
    const fh = await open(h.path, "r");
    const bytes = Buffer.alloc(at.length);
    try {
      await fh.read(bytes, 0, at.length, at.offset);
    } finally {
      await fh.close();
    }
    if (!bytesEqual(chunkDigest(bytes), h.meta.chunks[index] as Uint8Array)) {
      this.log.error("snapshot file damaged: a chunk does not match its digest; dropped", {
        file: h.path,
        chunk: index,
      });
      this.held.delete(height);
      await rename(h.path, `${h.path}.bad`).catch(() => {});
      return undefined;
    }
    return bytes;
  }

  /** After each commit: takes a snapshot when the height is due. */
  afterCommit(height: number): void {
    if (this.config.interval <= 0 || height % this.config.interval !== 0 || this.busy || this.stopped) return;
    this.take().catch((err) => this.log.error("snapshot failed", { height, error: errorMessage(err) }));
  }

  /**
   * Takes a snapshot of the head now, one at a time whoever asks (the interval, admin_snapshot,
   * `custos snapshot create`): a request while one is being written waits for it and gets it.
   */
  take(): Promise<Taken> {
    if (this.busy) return this.busy;
    if (this.stopped)
      return Promise.reject(
        new CustosError<SnapshotErrorCode>("SNAPSHOT_UNAVAILABLE", "the node is stopping"),
      );
    const running = this.write().finally(() => {
      this.busy = undefined;
    });
    this.busy = running;
    return running;
  }

  /**
   * What must be of the same moment is read before the first await: the state iterator (a
   * LevelDB snapshot) and the replay window; the rest is by height.
   */
  private async write(): Promise<Taken> {
    const head = this.ledger.head;
    const height = head.height;
    if (height === 0)
      throw new CustosError<SnapshotErrorCode>("SNAPSHOT_UNAVAILABLE", "nothing to snapshot at height 0");
    const entries = this.ledger.stateEntries();
    const window = this.ledger.recentWindow();
    const started = Date.now();
    await mkdir(this.dir, { recursive: true });
    const final = join(this.dir, snapshotName(height));
    const tmp = `${final}.tmp`;
    const fh = await open(tmp, "w");
    let pos = 0;
    const write = async (b: Uint8Array) => {
      await fh.write(b, 0, b.byteLength, pos);
      pos += b.byteLength;
    };
    try {
      await write(MAGIC);
      const table: { offset: number; length: number }[] = [];
      const digests: Uint8Array[] = [];
      let count = 0;
      let pending: [Uint8Array, Uint8Array][] = [];
      let pendingBytes = 0;
      const flush = async () => {
        const chunk = encodeChunk(pending);
        table.push({ offset: pos, length: chunk.byteLength });
        digests.push(chunkDigest(chunk));
        await write(chunk);
        pending = [];
        pendingBytes = 0;
      };
      for await (const [k, v] of entries) {
        if (this.stopped)
          throw new CustosError<SnapshotErrorCode>("SNAPSHOT_UNAVAILABLE", "the node is stopping");
        pending.push([k, v]);
        pendingBytes += k.byteLength + v.byteLength + 8;
        count++;
        if (pendingBytes >= CHUNK_BYTES) await flush();
      }
      if (pending.length > 0 || table.length === 0) await flush();
      const [blockBytes, certificate, changes] = await Promise.all([
        this.ledger.getBlockBytes(height),
        this.ledger.getCertificateBytes(height),
        this.ledger.setChanges(),
      ]);
      if (!blockBytes || !certificate)
        throw new CustosError<SnapshotErrorCode>("SNAPSHOT_UNAVAILABLE", `block ${height} is not held here`);
      const meta: SnapshotMeta = {
        chainId: this.chainId,
        height,
        block: blockBytes,
        certificate,
        setChanges: changes
          .filter((c) => c.height <= height)
          .map(({ height: h, record: [headerBytes, cert, value, proof] }) => ({
            height: h,
            headerBytes,
            certificate: cert,
            value,
            proof,
          })),
        window,
        chunks: digests,
        entries: count,
      };
      const metaBytes = encodeSnapshotMeta(meta);
      const metaOffset = pos;
      await write(metaBytes);
      await write(tableAndTrailer(table, metaOffset, metaBytes.byteLength));
      await fh.sync();
      await fh.close();
      await rename(tmp, final);
      this.held.set(height, { height, path: final, meta, metaBytes, table });
      this.log.info("snapshot taken", {
        height,
        entries: count,
        chunks: table.length,
        bytes: pos,
        seconds: (Date.now() - started) / 1000,
      });
      await this.trim();
      return { height, file: final, entries: count, chunks: table.length, bytes: pos };
    } catch (err) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw err;
    }
  }

  private async trim(): Promise<void> {
    for (const h of this.heights().slice(Math.max(1, this.config.keep))) {
      const held = this.held.get(h) as Held;
      this.held.delete(h);
      await rm(held.path, { force: true });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.busy?.catch(() => {});
  }
}
