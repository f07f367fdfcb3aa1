import { open, readdir, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { decode, encode, fieldAt, readArray, readBytes } from "@custos/codec";
import { LIMITS, type SignedTx } from "@custos/types";
import { CustosError, errorMessage, type Logger } from "@custos/utils";

/**
 * The transactions of the block this validator last proposed or voted for, on disk (HOME/data/
 * consensus.txs) until the next one replaces them.
 *
 * A proposal names its transactions by hash, and the consensus WAL keeps the proposal as it
 * came: the transactions themselves live in the pools, which a crash empties. When every
 * validator crashed after voting for a block and before committing it, each one restarts bound
 * by its votes to that block and unable to assemble it: nobody holds its transactions any more,
 * and the chain stops for good (seen once as "no commit within 60 s" after all four validators
 * were killed at ledger.commit.beforeWrite). A leader writes its block's transactions here before
 * its proposal leaves, a replica after it checked a proposal; on start they go back into the pool.
 */
export class ProposalTxs {
  private saving: Promise<void> = Promise.resolve();
  private seq = 0;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  /** Replaces the file with these transactions, durably (temp file, fdatasync, rename, dir fsync); in order of calls. */
  save(txs: readonly SignedTx[]): Promise<void> {
    const run = this.saving.then(() => this.write(encode(txs.map((t) => t.bytes))));
    this.saving = run.catch(() => {});
    return run;
  }

  private async write(bytes: Uint8Array): Promise<void> {
    try {
      await this.writeDurably(bytes);
    } catch (cause) {
      // a fault of the consensus WAL's kind: the node stops with it (a full disk, a read-only one)
      throw new CustosError(
        "WAL_WRITE_FAILED",
        `cannot keep the proposal's transactions in ${this.file}`,
        {},
        { cause },
      );
    }
  }

  private async writeDurably(bytes: Uint8Array): Promise<void> {
    const tmp = `${this.file}.tmp-${++this.seq}`;
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
    const dir = await open(dirname(this.file), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /** The signed bytes the last run left (none when there is no file; a damaged one is reported and ignored). */
  async load(): Promise<Uint8Array[]> {
    // temp files of writes a crash interrupted
    const prefix = `${basename(this.file)}.tmp-`;
    for (const name of await readdir(dirname(this.file)).catch(() => [] as string[]))
      if (name.startsWith(prefix)) await rm(join(dirname(this.file), name), { force: true });
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.file);
    } catch {
      return [];
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
}
