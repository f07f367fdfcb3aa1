import { join } from "node:path";
import { encode } from "@custos/codec";
import { decodeEnvelope, encodeBody, encodeEnvelope } from "@custos/consensus";
import { sm2Sign, sm3, VerifierPool } from "@custos/crypto";
import { decodeSignedTx, encodeHeader, type SignedTx } from "@custos/types";
import { type LogFields, type Logger, nullLogger, toHex } from "@custos/utils";
import { afterAll, describe, expect, it, vi } from "vitest";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { type CommittedBlock, PbftDriver } from "../../src/chain/pbftDriver.js";
import { decodeProposal, encodeProposal } from "../../src/chain/proposal.js";
import { FileWal } from "../../src/consensus/fileWal.js";
import { SignState } from "../../src/consensus/signState.js";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import { DEFAULT_POOL_OPTIONS, TxPool } from "../../src/txpool/txpool.js";
import { holdVerifications, pairTransport, tempDir, testChain, tx, until } from "../helpers.js";

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
  /** The fields of its "proposal rejected" log lines. */
  rejectLines: LogFields[];
}

/** Keeps the fields of the "block committed" and "proposal rejected" lines; drops the rest. */
function commitLog(commits: LogFields[], rejects: LogFields[]): Logger {
  const log: Logger = {
    ...nullLogger,
    info: (msg, fields) => {
      if (msg === "block committed") commits.push(fields ?? {});
    },
    warn: (msg, fields) => {
      if (msg === "proposal rejected") rejects.push(fields ?? {});
    },
    child: () => log,
  };
  return log;
}

async function replicas(
  serve: (from: number, hashes: Uint8Array[]) => Uint8Array[],
  clocks: (() => number)[] = [Date.now, Date.now],
  /** What validator `from`'s consensus messages become on the wire (a byzantine sender). */
  tamper: (bytes: Uint8Array, from: number) => Uint8Array = (bytes) => bytes,
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
    const rejectLines: LogFields[] = [];
    const wire = pairTransport(
      () => out,
      index,
      (from, hashes) => serve(from, hashes).map((b) => decodeSignedTx(b)),
    );
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
        transport: { ...wire, send: (e) => wire.send({ ...e, bytes: tamper(e.bytes, index) }) },
        log: commitLog(commitLines, rejectLines),
      },
    );
    const r: Replica = { driver, pool, ledger, committed: [], commitLines, rejectLines };
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
    // the replica also says what its pool lacked and how long getting it took; the leader lacked nothing
    const fetchedLine = (a as Replica).commitLines[0];
    expect(fetchedLine).toMatchObject({ fetched: 1 });
    expect(fetchedLine?.fetchMs as number).toBeGreaterThanOrEqual(0);
    expect(fetchedLine?.fetchMs as number).toBeLessThanOrEqual(fetchedLine?.roundMs as number);
    expect((b as Replica).commitLines[0]).not.toHaveProperty("fetched");
  });

  it("a replica still verifying a proposed transaction's gossip waits for it instead of fetching it", async () => {
    const asked: string[] = [];
    const [a, b] = (await replicas((from, hashes) => {
      asked.push(...hashes.map(toHex));
      return hashes.flatMap((h) => {
        const t = (from === 1 ? b : a)?.pool.get(h);
        return t ? [t.bytes] : [];
      });
    })) as [Replica, Replica];
    const t1 = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-settle"]);
    // the replica's check of the signature is held until the leader's proposal has come
    const held = holdVerifications(verifier, { once: true });
    const settled = vi.spyOn(a.pool, "settled");
    try {
      const admitting = a.pool.add(t1.bytes, "gossip");
      await until(() => held.calls() === 1, 5_000);
      await b.pool.add(t1.bytes); // the leader of height 1 has it and proposes
      await until(() => settled.mock.calls.length > 0, 15_000);
      expect(a.committed).toEqual([]);
      held.release();
      await admitting;
      await until(() => a.committed.length === 1 && b.committed.length === 1, 15_000);
    } finally {
      held.restore();
      settled.mockRestore();
    }
    expect(asked).toEqual([]);
    expect(a.driver.fetchedTxs).toBe(0);
    expect(a.commitLines[0]).not.toHaveProperty("fetched");
    expect(toHex(a.ledger.head.hash)).toBe(toHex(b.ledger.head.hash));
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

describe("a proposal's txRoot", () => {
  it("a leader whose header's txRoot is not the root of its proposal's hashes gets no vote", async () => {
    const leader = chain.validators[1] as { privateKey: Uint8Array };
    // validator 1 signs, as its own, a pre-prepare whose header names another txRoot (and so
    // another block hash) over the same transactions: executing them reproduces every other field
    const forge = (bytes: Uint8Array, from: number): Uint8Array => {
      const env = decodeEnvelope(bytes, 64 * 1024 * 1024);
      if (from !== 1 || env.body.kind !== "preprepare") return bytes;
      const p = decodeProposal(env.body.block);
      const headerBytes = encodeHeader({ ...p.header, txRoot: sm3(Uint8Array.of(1)) });
      const body = encodeBody({
        ...env.body,
        blockHash: sm3(headerBytes),
        block: encodeProposal(headerBytes, p.txHashes),
      });
      return encodeEnvelope(body, 1, sm2Sign(leader.privateKey, body));
    };
    const [a, b] = await replicas(
      (from, hashes) =>
        hashes.flatMap((h) => {
          const t = (from === 1 ? b : a)?.pool.get(h);
          return t ? [t.bytes] : [];
        }),
      undefined,
      forge,
    );
    const t1 = tx(chain, "operator", "issue", [chain.keys.merchant?.address, 5n, "rc-txroot"]);
    for (const r of [a, b] as Replica[]) await r.pool.add(t1.bytes);
    await until(() => (a as Replica).rejectLines.length > 0, 15_000);
    expect((a as Replica).rejectLines[0]).toMatchObject({
      height: 1,
      reason: "txRoot does not match its hashes",
    });
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
