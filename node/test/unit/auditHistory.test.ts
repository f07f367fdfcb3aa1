import { join } from "node:path";
import type { Role, SignedTx } from "@custos/types";
import { isCustosError, type LogFields, type Logger, nullLogger } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { AuditIndex } from "../../src/audit/auditIndex.js";
import { AuditService } from "../../src/audit/auditService.js";
import { buildBlock, commitOf } from "../../src/chain/blockBuilder.js";
import { chainLedgerSpec, openChainLedger } from "../../src/chain/openLedger.js";
import type { SyncNetwork } from "../../src/chain/sync.js";
import { serveSync } from "../../src/chain/syncProtocol.js";
import { Executor } from "../../src/execution/executor.js";
import type { Ledger } from "../../src/ledger/ledger.js";
import { joinFromSnapshot } from "../../src/snapshot/join.js";
import { SnapshotStore } from "../../src/snapshot/store.js";
import { CertifiedChain } from "../certifiedChain.js";
import { tempDir } from "../helpers.js";

/**
 * The audit index on a ledger that does not hold the chain from genesis: one started from a
 * peer's snapshot, one whose old blocks were pruned. The index starts after the ledger's base;
 * queries reaching below its first block fail AUDIT_HISTORY_UNAVAILABLE, saying where it starts.
 */
const MEMBERS: [string, Role][] = [
  ["operator", "operator"],
  ["consumer-1", "consumer"],
  ["consumer-2", "consumer"],
];

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dir(name: string): Promise<string> {
  const t = await tempDir(`custos-audithist-${name}-`);
  cleanups.push(t.cleanup);
  return t.dir;
}

function recordingLogger(lines: { level: string; msg: string; fields?: LogFields }[]): Logger {
  const at =
    (level: string) =>
    (msg: string, fields?: LogFields): void => {
      lines.push({ level, msg, ...(fields ? { fields } : {}) });
    };
  const log: Logger = {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => log,
  };
  return log;
}

async function unavailable(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err, "the query should have failed").toBeDefined();
  expect(isCustosError(err, "AUDIT_HISTORY_UNAVAILABLE"), String(err)).toBe(true);
  return err as Error;
}

const all = { from: null, to: null };

describe("the audit index on a ledger without the whole history", () => {
  let chain: CertifiedChain;

  it("on a ledger started from a snapshot: indexes from the base on, reports where its history starts, refuses what reaches below", async () => {
    chain = await CertifiedChain.create(join(await dir("source"), "ledger"), {
      validators: 1,
      members: MEMBERS,
    });
    cleanups.push(() => chain.ledger.close().catch(() => {}));
    await chain.send({
      from: "operator",
      to: "ecny",
      method: "issue",
      args: [chain.address("consumer-1"), 1_000_000n, "rc-0"],
    });
    for (let i = 1; i < 10; i++)
      await chain.send({
        from: "consumer-1",
        to: "ecny",
        method: "transfer",
        args: [chain.address("consumer-2"), BigInt(i)],
      });
    const store = await new SnapshotStore(
      await dir("store"),
      { interval: 0, keep: 1 },
      chain.ledger,
      chain.genesis.chainId,
      nullLogger,
    ).open();
    const taken = await store.take();
    expect(taken.height).toBe(10);

    // a new node joins from that snapshot (through the real serving code)
    const target = join(await dir("target"), "ledger");
    const net: SyncNetwork = {
      connectedPeers: () => [{ index: 0, peerId: "p0", addrs: [], role: "validator" }],
      disconnect: async () => {},
      request: async (_i, req) => {
        const frames: Uint8Array[] = [];
        for await (const f of serveSync(chain.ledger, req, undefined, store)) frames.push(f);
        return frames;
      },
    };
    await joinFromSnapshot({
      genesis: chain.genesis,
      ledger: chainLedgerSpec(target, chain.genesis, nullLogger),
      net,
      log: nullLogger,
      signal: new AbortController().signal,
      waitMs: 1000,
    });
    const copy: Ledger = await openChainLedger(target, chain.genesis, nullLogger);
    cleanups.push(() => copy.close());
    expect(copy.base).toBe(10);

    const lines: { level: string; msg: string; fields?: LogFields }[] = [];
    const auditDir = join(await dir("audit"), "audit");
    let index = await AuditIndex.open(
      { dir: auditDir, genesis: chain.genesis },
      { chain: copy, log: recordingLogger(lines) },
    );
    index.start();
    expect(index.first).toBe(11);
    expect(index.height).toBe(10);
    await index.waitFor(10);

    // the chain goes on; the copy executes the same blocks (as sync would) and indexes them
    const executor = new Executor(chain.genesis, nullLogger);
    for (let i = 0; i < 3; i++) {
      const t: SignedTx = chain.tx({
        from: "consumer-1",
        to: "ecny",
        method: "transfer",
        args: [chain.address("consumer-2"), 100n + BigInt(i)],
      });
      await chain.block([t]);
      const built = await buildBlock(chain.genesis.chainId, copy.head, [t], {
        timestamp: chain.time,
        proposer: 0,
        view: 0,
        executor,
        state: copy,
      });
      await copy.commit(
        commitOf(
          built,
          chain.certify(
            built.block,
            copy.head.validators.map((v) => v.publicKey),
          ),
        ),
      );
      index.committed(built.block, built.receipts);
    }
    expect(copy.head.height).toBe(13);
    await index.waitFor(13);
    expect(lines.filter((l) => l.level === "error")).toEqual([]);

    const service = new AuditService({ index, ledger: copy, genesis: chain.genesis });
    expect(service.status()).toMatchObject({ indexedHeight: 13, ledgerHeight: 13, firstHeight: 11 });
    const consumer2 = chain.address("consumer-2");
    // from genesis, or from a time at or before the base block: not held here
    const e = await unavailable(service.events({ subject: consumer2, range: all, limit: 100 }));
    expect(e.message).toContain("starts at block 11");
    const baseTime = (await copy.getBlock(10))?.header.timestamp as number;
    await unavailable(
      service.events({ subject: consumer2, range: { from: baseTime, to: null }, limit: 100 }),
    );
    await unavailable(service.trace({ account: consumer2 }, all));
    await unavailable(service.txs(consumer2, all, 100));
    await unavailable(service.reconcile(all));
    await unavailable(service.clearing({ from: baseTime + 1, to: null }));
    await unavailable(
      service.export({ kind: "trace", target: { account: consumer2 }, from: baseTime + 1, to: null }),
    );
    // from after the base block: what this node holds
    const later = { from: baseTime + 1, to: null };
    const events = (await service.events({ subject: consumer2, range: later, limit: 100 })) as {
      events: { height: number }[];
    };
    expect(events.events.map((x) => x.height)).toEqual([11, 12, 13]);
    const trace = (await service.trace({ account: consumer2 }, later)) as Record<string, unknown>;
    expect(JSON.stringify(trace)).toContain(String(45n + 303n));

    // a restart keeps where the history starts
    await index.close();
    index = await AuditIndex.open(
      { dir: auditDir, genesis: chain.genesis },
      { chain: copy, log: nullLogger },
    );
    cleanups.push(() => index.close());
    expect(index.first).toBe(11);
    expect(index.height).toBe(13);
  });

  it("on a pruned ledger: a new index starts after the base, an older one below it is rebuilt; exports of pruned blocks are refused", async () => {
    // an index built while the blocks were there keeps the whole history
    const full = await AuditIndex.open(
      { dir: join(await dir("full"), "audit"), genesis: chain.genesis },
      { chain: chain.ledger, log: nullLogger },
    );
    cleanups.push(() => full.close());
    full.start();
    await full.waitFor(chain.ledger.head.height);
    expect(full.first).toBe(1);
    // and one opened but left behind at height 0
    const oldDir = join(await dir("old"), "audit");
    await (
      await AuditIndex.open({ dir: oldDir, genesis: chain.genesis }, { chain: chain.ledger, log: nullLogger })
    ).close();

    expect(await chain.ledger.prune(5)).toBe(7);
    expect(chain.ledger.base).toBe(8);
    const head = chain.ledger.head.height;

    const fresh = await AuditIndex.open(
      { dir: join(await dir("fresh"), "audit"), genesis: chain.genesis },
      { chain: chain.ledger, log: nullLogger },
    );
    cleanups.push(() => fresh.close());
    fresh.start();
    await fresh.waitFor(head);
    expect(fresh.first).toBe(9);
    const lines: { level: string; msg: string; fields?: LogFields }[] = [];
    const old = await AuditIndex.open(
      { dir: oldDir, genesis: chain.genesis },
      { chain: chain.ledger, log: recordingLogger(lines) },
    );
    cleanups.push(() => old.close());
    expect(lines[0]).toMatchObject({
      level: "warn",
      msg: "audit index dropped, rebuilding it from the ledger",
    });
    expect(String(lines[0]?.fields?.reason)).toContain("holds blocks from 9 only");
    old.start();
    await old.waitFor(head);
    expect(old.first).toBe(9);
    expect(lines.filter((l) => l.level === "error")).toEqual([]);

    const s = new AuditService({ index: fresh, ledger: chain.ledger, genesis: chain.genesis });
    expect(s.status()).toMatchObject({ firstHeight: 9, indexedHeight: head });
    const err = await unavailable(s.events({ subject: chain.address("consumer-2"), range: all, limit: 10 }));
    expect(err.message).toContain("starts at block 9");

    // the index with the whole history still traces from genesis, but an export needs the blocks
    const f = new AuditService({ index: full, ledger: chain.ledger, genesis: chain.genesis });
    const consumer1 = chain.address("consumer-1");
    const trace = (await f.trace({ account: consumer1 }, all)) as Record<string, unknown>;
    expect(JSON.stringify(trace)).toContain(String(1_000_000n - 45n - 303n));
    const ex = await unavailable(
      f.export({ kind: "trace", target: { account: consumer1 }, from: null, to: null }),
    );
    expect(ex.message).toContain("pruned");
  });
});
