import { type FileHandle, open, rename } from "node:fs/promises";
import { frameRecord, readRecords, type Wal } from "@custos/consensus";
import { CustosError, type Logger } from "@custos/utils";
import type { SigningErrorCode } from "./signState.js";

/**
 * The consensus WAL on disk: length + CRC framed records appended with fdatasync, so that a vote
 * is durable before it leaves. On open, a torn tail (the process died mid-append) is cut off the
 * file. After a block commits, `compact` rewrites the log with the records still needed,
 * atomically (temp file, fsync, rename), but only once the log has grown past `compactBytes`:
 * records of heights already decided are ignored on restart (the engine replays only the
 * height it starts at), so rewriting the file after every block would buy nothing but an
 * fsync and a rename on the critical path. A failed write is unrecoverable and is thrown: the
 * node must stop rather than send a vote it could forget.
 */
export class FileWal implements Wal {
  private constructor(
    private fh: FileHandle,
    private readonly path: string,
    private records: Uint8Array[],
    private size: number,
    private readonly compactBytes: number,
  ) {}

  static async open(path: string, log: Logger, compactBytes = 8 * 1024 * 1024): Promise<FileWal> {
    const fh = await open(path, "a+", 0o600);
    const bytes = new Uint8Array(await fh.readFile());
    const { records, tornBytes, validLength } = readRecords(bytes);
    if (tornBytes > 0) {
      await fh.truncate(validLength);
      await fh.datasync();
      log.warn("consensus WAL had a torn tail; dropped", { path, tornBytes, records: records.length });
    }
    return new FileWal(fh, path, records, validLength, compactBytes);
  }

  async append(record: Uint8Array): Promise<void> {
    const framed = frameRecord(record);
    try {
      await this.fh.write(framed, 0, framed.length, this.size);
      await this.fh.datasync();
    } catch (cause) {
      throw new CustosError<SigningErrorCode>(
        "WAL_WRITE_FAILED",
        `cannot append to the consensus WAL ${this.path}`,
        {},
        { cause },
      );
    }
    this.size += framed.length;
    this.records.push(record);
  }

  readAll(): Uint8Array[] {
    return [...this.records];
  }

  /**
   * Replaces the log with `keep` (the records of the height in progress). With nothing to keep
   * and the file under `compactBytes`, the file stays as it is (its records are of decided
   * heights) and only memory forgets them.
   */
  async compact(keep: Uint8Array[]): Promise<void> {
    if (keep.length === 0 && this.size <= this.compactBytes) {
      this.records = [];
      return;
    }
    const tmp = `${this.path}.tmp`;
    const out = await open(tmp, "w", 0o600);
    try {
      const framed = Buffer.concat(keep.map(frameRecord));
      await out.write(framed);
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, this.path);
    await this.fh.close();
    this.fh = await open(this.path, "a+", 0o600);
    this.records = [...keep];
    this.size = (await this.fh.stat()).size;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
