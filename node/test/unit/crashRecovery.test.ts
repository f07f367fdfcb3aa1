import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encode } from "@custos/codec";
import { VerifierPool } from "@custos/crypto";
import { nullLogger, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { type CommittedBlock, PbftDriver } from "../../src/chain/pbftDriver.js";
import { ProposalTxs } from "../../src/chain/proposalTxs.js";
import { homePaths } from "../../src/config.js";
import { openSigning } from "../../src/consensus/signing.js";
import { Executor } from "../../src/execution/executor.js";
import { DEFAULT_POOL_OPTIONS, TxPool } from "../../src/txpool/txpool.js";
import { pairTransport, tempDir, testChain, tx, until } from "../helpers.js";

/**
 * Every validator votes for a block and crashes before its ledger write (n = 2: both must vote).
 * Proposals name transactions by hash and a crash empties the pools, so on restart the block can
 * be assembled only from what a validator kept on disk (chain/proposalTxs.ts).
 */
const chain = testChain({ validators: 2 });
const verifier = new VerifierPool();
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await verifier.close();
});

interface Validator {
  driver: PbftDriver;
  pool: TxPool;
  committed: CommittedBlock[];
  failed: boolean;
  head(): { height: number; hash: string };
  /** Stops the driver and closes the files, as a killed process leaves them. */
  down(): Promise<void>;
}

async function start(homes: string[], crashInCommit: boolean): Promise<Validator[]> {
  const out: Validator[] = [];
  for (const [i, home] of homes.entries()) {
    const paths = homePaths(home);
    await mkdir(join(home, "data"), { recursive: true });
    const ledger = await openChainLedger(paths.ledger, chain.genesis, nullLogger);
    const pool = new TxPool(
      DEFAULT_POOL_OPTIONS,
      {
        chainId: chain.genesis.chainId,
        blockLimitWindow: 600,
        headHeight: () => ledger.head.height,
        isCommitted: async (h) => ledger.isRecentlyCommitted(h),
        isMember: async () => true,
      },
      verifier,
      nullLogger,
    );
    const proposalTxs = new ProposalTxs(paths.proposalTxs, nullLogger);
    // what node.ts does before consensus starts
    for (const b of await proposalTxs.load()) await pool.add(b, "gossip").catch(() => {});
    const { wal, signState } = await openSigning(paths, ledger, chain.genesis, false, nullLogger);
    if (crashInCommit)
      (ledger as unknown as { commit: () => Promise<void> }).commit = async () => {
        throw new Error("killed inside the ledger commit");
      };
    const index = i;
    const driver = new PbftDriver(
      { genesis: chain.genesis, baseTimeoutMs: 3000, maxTimeoutMs: 3000 },
      {
        ledger,
        executor: new Executor(chain.genesis, nullLogger),
        pool,
        verifier,
        wal,
        signState,
        key: chain.validators[i] as never,
        transport: pairTransport(() => out, index),
        log: nullLogger,
        proposalTxs,
      },
    );
    let closed = false;
    const down = async () => {
      if (closed) return;
      closed = true;
      await driver.stop();
      await wal.close();
      await signState.close();
      await ledger.close();
    };
    const v: Validator = {
      driver,
      pool,
      committed: [],
      failed: false,
      head: () => ({ height: ledger.head.height, hash: toHex(ledger.head.hash) }),
      down,
    };
    driver.on("block:committed", (c) => v.committed.push(c));
    driver.on("chain:failed", () => {
      v.failed = true;
    });
    cleanups.push(down);
    out.push(v);
  }
  for (const v of out) v.driver.start();
  return out;
}

describe("every validator crashes between its commit vote and its ledger write", () => {
  it("restarted with empty pools, they assemble the block they voted for from disk and commit it", async () => {
    const homes = await Promise.all(
      [0, 1].map(async (i) => {
        const t = await tempDir(`custos-crash-${i}-`);
        cleanups.push(t.cleanup);
        return t.dir;
      }),
    );
    const first = await start(homes, true);
    // height 1's leader is validator 1 ((height + view) mod n): only its pool has the tx
    const t1 = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-crash-all"]);
    await (first[1] as Validator).pool.add(t1.bytes);
    await until(() => first.every((v) => v.failed), 15_000);
    expect(first.map((v) => v.head().height)).toEqual([0, 0]);
    for (const v of first) await v.down();

    const again = await start(homes, false);
    await until(() => again.every((v) => v.committed.length === 1), 15_000);
    const [a, b] = again as [Validator, Validator];
    expect(a.head()).toEqual(b.head());
    expect(a.head().height).toBe(1);
    expect(a.committed[0]?.block.txs.map((t) => toHex(t.hash))).toEqual([toHex(t1.hash)]);
  });

  it("the files: each record written over the older of two and read back; a torn newest record leaves the one before; an earlier version's file and its temp files", async () => {
    const t = await tempDir("custos-proposal-txs-");
    cleanups.push(t.cleanup);
    const file = join(t.dir, "consensus.txs");
    const hex = (l: Uint8Array[]) => l.map((b) => toHex(b));
    const store = new ProposalTxs(file, nullLogger);
    expect(await store.load()).toEqual([]);
    const txs = [0, 1, 2, 3].map((i) =>
      tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, `rc-f${i}`]),
    );
    const [a, b] = [txs.slice(0, 3), txs.slice(3)] as [typeof txs, typeof txs];
    await store.save(a);
    expect(hex(await new ProposalTxs(file, nullLogger).load())).toEqual(hex(a.map((x) => x.bytes)));
    await store.save(b); // shorter than the record it follows: the length, not the file's end, counts
    expect(hex(await new ProposalTxs(file, nullLogger).load())).toEqual(hex(b.map((x) => x.bytes)));
    await store.close();
    expect((await readdir(t.dir)).sort()).toEqual(["consensus.txs.0", "consensus.txs.1"]);
    // the newest record torn (one byte of its payload changed): the one before it is read
    const newest = `${file}.0`; // records 1, 2 went to files 1, 0
    const bytes = await readFile(newest);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(newest, bytes);
    const reopened = new ProposalTxs(file, nullLogger);
    expect(hex(await reopened.load())).toEqual(hex(a.map((x) => x.bytes)));
    // and the next record goes over the torn one, never over the intact one
    await reopened.save(b);
    await reopened.close();
    expect(hex(await new ProposalTxs(file, nullLogger).load())).toEqual(hex(b.map((x) => x.bytes)));
    // an earlier version's single file (and a temp file of its interrupted write), read when no
    // record is; a damaged one is reported and ignored
    const old = await tempDir("custos-proposal-txs-old-");
    cleanups.push(old.cleanup);
    const legacy = join(old.dir, "consensus.txs");
    await writeFile(legacy, encode(a.map((x) => x.bytes)));
    await writeFile(`${legacy}.tmp-7`, "half");
    const upgraded = new ProposalTxs(legacy, nullLogger);
    expect(hex(await upgraded.load())).toEqual(hex(a.map((x) => x.bytes)));
    expect(await readdir(old.dir)).toEqual(["consensus.txs"]);
    await upgraded.save(b); // the first record makes the old file stale: it goes
    await upgraded.close();
    expect((await readdir(old.dir)).sort()).toEqual(["consensus.txs.0", "consensus.txs.1"]);
    await writeFile(join(old.dir, "other.txs"), new Uint8Array([0x93, 0xc4]));
    expect(await new ProposalTxs(join(old.dir, "other.txs"), nullLogger).load()).toEqual([]);
  });
});
