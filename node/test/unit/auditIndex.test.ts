import { cp } from "node:fs/promises";
import type { Role } from "@custos/types";
import { type LogFields, type Logger, nullLogger } from "@custos/utils";
import { afterEach, describe, expect, it } from "vitest";
import { AuditIndex } from "../../src/audit/auditIndex.js";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { CertifiedChain } from "../certifiedChain.js";
import { tempDir } from "../helpers.js";

/** The audit index against a real ledger: what it keeps across restarts, and when it starts over. */
const MEMBERS: [string, Role][] = [
  ["operator", "operator"],
  ["consumer-1", "consumer"],
  ["consumer-2", "consumer"],
];

/** A Logger that keeps what was logged (the node's logs are where an operator sees progress). */
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

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function chainWithPayments(blocks: number): Promise<{ chain: CertifiedChain; dir: string }> {
  const t = await tempDir("custos-auditidx-");
  const chain = await CertifiedChain.create(`${t.dir}/ledger`, { validators: 1, members: MEMBERS });
  cleanups.push(async () => {
    await chain.ledger.close().catch(() => {});
    await t.cleanup();
  });
  await chain.send({
    from: "operator",
    to: "ecny",
    method: "issue",
    args: [chain.address("consumer-1"), 1_000_000n, "rc-0"],
  });
  for (let i = 1; i < blocks; i++)
    await chain.send({
      from: "consumer-1",
      to: "ecny",
      method: "transfer",
      args: [chain.address("consumer-2"), BigInt(i)],
    });
  return { chain, dir: t.dir };
}

describe("the audit index", () => {
  it("catches up from an existing ledger with progress in the log, and keeps its height across a restart", async () => {
    const { chain, dir } = await chainWithPayments(30);
    const lines: { level: string; msg: string; fields?: LogFields }[] = [];
    const log = recordingLogger(lines);
    let index = await AuditIndex.open(
      { dir: `${dir}/audit`, genesis: chain.genesis },
      { chain: chain.ledger, log },
    );
    index.start();
    await index.waitFor(30);
    expect(lines.map((l) => l.msg)).toEqual([
      "audit index catching up from the ledger",
      "audit index caught up",
    ]);
    expect(lines[1]?.fields).toMatchObject({ height: 30, blocks: "30/30" });
    const events = await index.subjectEvents(chain.address("consumer-2"), 0, 30);
    expect(events).toHaveLength(29);
    await index.close();
    index = await AuditIndex.open(
      { dir: `${dir}/audit`, genesis: chain.genesis },
      { chain: chain.ledger, log },
    );
    expect(index.height).toBe(30);
    expect(await index.subjectEvents(chain.address("consumer-2"), 0, 30)).toHaveLength(29);
    expect((await index.balances()).find((b) => b.account === chain.address("consumer-2"))?.balance).toBe(
      435n,
    );
    await index.close();
  });

  it("follows blocks handed to it after each commit", async () => {
    const { chain, dir } = await chainWithPayments(2);
    const index = await AuditIndex.open(
      { dir: `${dir}/audit`, genesis: chain.genesis },
      { chain: chain.ledger, log: nullLogger },
    );
    index.start();
    await index.waitFor(2);
    for (let i = 0; i < 5; i++) {
      await chain.send({
        from: "consumer-1",
        to: "ecny",
        method: "transfer",
        args: [chain.address("consumer-2"), 1n],
      });
      const c = chain.committed[chain.committed.length - 1] as (typeof chain.committed)[number];
      index.committed(c.block, c.receipts);
    }
    await index.waitFor(7);
    expect(await index.subjectEvents(chain.address("consumer-2"), 3, 7)).toHaveLength(5);
    await index.close();
    await expect(index.waitFor(99)).rejects.toMatchObject({ code: "AUDIT_INDEX_BUILDING" });
  });

  it("is dropped and rebuilt when it is ahead of its ledger (a reset ledger)", async () => {
    const { chain, dir } = await chainWithPayments(5);
    await chain.ledger.close();
    await cp(`${dir}/ledger`, `${dir}/ledger-at-5`, { recursive: true });
    const reopened = await openChainLedger(`${dir}/ledger`, chain.genesis, nullLogger);
    Object.assign(chain, { ledger: reopened });
    for (let i = 0; i < 5; i++)
      await chain.send({
        from: "consumer-1",
        to: "ecny",
        method: "transfer",
        args: [chain.address("consumer-2"), 1n],
      });
    let index = await AuditIndex.open(
      { dir: `${dir}/audit`, genesis: chain.genesis },
      { chain: chain.ledger, log: nullLogger },
    );
    index.start();
    await index.waitFor(10);
    await index.close();
    await chain.ledger.close();
    const older = await openChainLedger(`${dir}/ledger-at-5`, chain.genesis, nullLogger);
    cleanups.push(() => older.close());
    const lines: { level: string; msg: string; fields?: LogFields }[] = [];
    index = await AuditIndex.open(
      { dir: `${dir}/audit`, genesis: chain.genesis },
      { chain: older, log: recordingLogger(lines) },
    );
    expect(lines[0]).toMatchObject({
      level: "warn",
      fields: { reason: expect.stringContaining("above the ledger's 5") },
    });
    expect(index.height).toBe(0);
    index.start();
    await index.waitFor(5);
    expect(await index.subjectEvents(chain.address("consumer-2"), 0, 99)).toHaveLength(4);
    await index.close();
  });

  it("is dropped and rebuilt when it belongs to another chain", async () => {
    const a = await chainWithPayments(3);
    const b = await chainWithPayments(2);
    const index = await AuditIndex.open(
      { dir: `${a.dir}/audit`, genesis: a.chain.genesis },
      { chain: a.chain.ledger, log: nullLogger },
    );
    index.start();
    await index.waitFor(3);
    await index.close();
    const lines: { level: string; msg: string; fields?: LogFields }[] = [];
    const other = await AuditIndex.open(
      { dir: `${a.dir}/audit`, genesis: b.chain.genesis },
      { chain: b.chain.ledger, log: recordingLogger(lines) },
    );
    expect(lines[0]?.fields).toMatchObject({ reason: "it belongs to another genesis" });
    expect(other.height).toBe(0);
    await other.close();
  });
});
