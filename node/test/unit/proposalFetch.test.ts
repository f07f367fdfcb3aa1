import { join } from "node:path";
import { encode } from "@custos/codec";
import { VerifierPool } from "@custos/crypto";
import { decodeSignedTx, type SignedTx } from "@custos/types";
import { type LogFields, type Logger, nullLogger, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { type CommittedBlock, PbftDriver } from "../../src/chain/pbftDriver.js";
import { FileWal } from "../../src/consensus/fileWal.js";
import { SignState } from "../../src/consensus/signState.js";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import { DEFAULT_POOL_OPTIONS, TxPool } from "../../src/txpool/txpool.js";
import { pairTransport, tempDir, testChain, tx, until } from "../helpers.js";

/**
 * Two validators in one process (n = 2: both must vote), wired by hand: proposals carry tx
 * hashes, and a replica whose pool lacks a proposed transaction fetches it from the leader.
 */
const chain = testChain({ validators: 2 });
const verifier = new VerifierPool();
const stops: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of stops.reverse()) await s();
  await verifier.close();
});

interface Replica {
  driver: PbftDriver;
  pool: TxPool;
  ledger: Ledger;
  committed: CommittedBlock[];
  /** The fields of this validator's "block committed" log lines. */
  commitLines: LogFields[];
}

/** Keeps the fields of the "block committed" lines; drops the rest. */
function commitLog(into: LogFields[]): Logger {
  const log: Logger = {
    ...nullLogger,
    info: (msg, fields) => {
      if (msg === "block committed") into.push(fields ?? {});
    },
    child: () => log,
  };
  return log;
}

async function replicas(
  serve: (from: number, hashes: Uint8Array[]) => Uint8Array[],
  clocks: (() => number)[] = [Date.now, Date.now],
): Promise<Replica[]> {
  const out: Replica[] = [];
  for (let i = 0; i < 2; i++) {
    const t = await tempDir(`custos-fetch-${i}-`);
    const ledger = await openChainLedger(join(t.dir, "ledger"), chain.genesis, nullLogger);
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
    const wal = await FileWal.open(join(t.dir, "wal"), nullLogger);
    const signState = await SignState.open(
      join(t.dir, "sign-state"),
      { ledgerHeight: 0, walHasRecords: false, allowMissing: false, walVotes: [] },
      nullLogger,
    );
    const index = i;
    const commitLines: LogFields[] = [];
    const driver = new PbftDriver(
      {
        genesis: chain.genesis,
        baseTimeoutMs: 5000,
        maxTimeoutMs: 5000,
        maxClockDriftMs: 5000,
        now: clocks[i] as () => number,
      },
      {
        ledger,
        executor: new Executor(chain.genesis, nullLogger),
        pool,
        verifier,
        wal,
        signState,
        key: chain.validators[i] as never,
        // the wire's bytes, decoded as the network does (a forged signature decodes; it fails later)
        transport: pairTransport(
          () => out,
          index,
          (from, hashes) => serve(from, hashes).map((b) => decodeSignedTx(b)),
        ),
        log: commitLog(commitLines),
      },
    );
    const r: Replica = { driver, pool, ledger, committed: [], commitLines };
    driver.on("block:committed", (c) => r.committed.push(c));
    out.push(r);
    stops.push(async () => {
      await driver.stop();
      await wal.close();
      await signState.close();
      await ledger.close();
      await t.cleanup();
    });
  }
  for (const r of out) r.driver.start();
  return out;
}

describe("proposals by transaction hashes", () => {
  it("a replica that lacks a proposed transaction fetches it from the leader, and both commit the same block", async () => {
    const asked: string[] = [];
    const [a, b] = await replicas((from, hashes) => {
      asked.push(...hashes.map(toHex));
      return hashes.flatMap((h) => {
        const t = (from === 1 ? b : a)?.pool.get(h);
        return t ? [t.bytes] : [];
      });
    });
    // height 1's leader is validator 1 ((height + view) mod n): only its pool has the tx
    const t1 = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-fetch"]);
    await (b as Replica).pool.add(t1.bytes);
    await until(() => (a as Replica).committed.length === 1 && (b as Replica).committed.length === 1, 15_000);
    expect(asked).toEqual([toHex(t1.hash)]);
    expect((a as Replica).driver.fetchedTxs).toBe(1);
    expect(toHex((a as Replica).ledger.head.hash)).toBe(toHex((b as Replica).ledger.head.hash));
    expect((a as Replica).ledger.head.height).toBe(1);
    // each says where its round went: the leader from its proposal, the replica from its arrival
    for (const r of [a, b] as Replica[]) {
      const [line] = r.commitLines;
      expect(line).toMatchObject({ height: 1, txs: 1 });
      for (const k of ["roundMs", "executeMs", "writeMs"]) {
        expect(typeof line?.[k]).toBe("number");
        expect(line?.[k] as number).toBeGreaterThanOrEqual(0);
      }
      expect(line?.executeMs as number).toBeLessThanOrEqual(line?.roundMs as number);
    }
  });

  it("a fetched transaction whose signature does not verify keeps the replica from preparing: nothing commits", async () => {
    const [a, b] = await replicas((from, hashes) =>
      hashes.flatMap((h) => {
        const t = (from === 1 ? b : a)?.pool.get(h);
        if (!t) return [];
        // the leader's peer serves the same body (same hash) with a forged signature
        const sig = Uint8Array.from(t.signature);
        sig[7] = (sig[7] as number) ^ 0xff;
        return [encode([t.body, sig])];
      }),
    );
    const t1: SignedTx = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-forged"]);
    expect(toHex(decodeSignedTx(encode([t1.body, t1.signature])).hash)).toBe(toHex(t1.hash));
    await (b as Replica).pool.add(t1.bytes);
    // the replica fetched it and refused: the leader alone cannot reach n = 2
    await until(() => (a as Replica).driver.proposalsRefused === 1, 15_000);
    expect((a as Replica).driver.fetchedTxs).toBe(1);
    expect((a as Replica).committed).toEqual([]);
    expect((b as Replica).committed).toEqual([]);
  });
});

describe("block time", () => {
  const serveFrom = (rs: () => Replica[]) => (from: number, hashes: Uint8Array[]) =>
    hashes.flatMap((h) => {
      const t = rs()[from]?.pool.get(h);
      return t ? [t.bytes] : [];
    });

  it("a leader whose clock is a minute ahead gets no vote: its block is refused and nothing commits", async () => {
    let rs: Replica[] = [];
    rs = await replicas(
      serveFrom(() => rs),
      [Date.now, () => Date.now() + 60_000],
    );
    const [a, b] = rs as [Replica, Replica];
    const t1 = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-clock-ahead"]);
    await b.pool.add(t1.bytes);
    await until(() => a.driver.proposalsRefused === 1, 15_000);
    expect(a.committed).toEqual([]);
    expect(b.committed).toEqual([]);
  });

  it("a leader within the drift bound commits, with its own time in the block", async () => {
    let rs: Replica[] = [];
    rs = await replicas(
      serveFrom(() => rs),
      [Date.now, () => Date.now() + 2000],
    );
    const [a, b] = rs as [Replica, Replica];
    const before = Date.now();
    const t1 = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-clock-near"]);
    await b.pool.add(t1.bytes);
    await until(() => a.committed.length === 1 && b.committed.length === 1, 15_000);
    expect(a.driver.proposalsRefused).toBe(0);
    expect(a.ledger.head.header.timestamp).toBeGreaterThanOrEqual(before + 2000);
  });
});
