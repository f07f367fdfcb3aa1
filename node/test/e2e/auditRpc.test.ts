import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AuditClient, CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CustosNode, initHome } from "../../src/index.js";
import { tempDir } from "../helpers.js";

/**
 * The audit RPC of a real node over HTTP: a node that ran without its audit index builds it
 * from its ledger when it starts with one (progress in node.log), answers audit_* as the
 * explorer and the CLI ask, and refuses bad parameters with INVALID_PARAMS saying which.
 */
let home: string;
let cleanup: () => Promise<void>;
let node: CustosNode | undefined;
const keys: Record<string, Sm2KeyPair> = {};

async function setIndex(on: boolean) {
  const file = join(home, "config.json");
  const cfg = JSON.parse(await readFile(file, "utf8"));
  cfg.audit = { index: on };
  await writeFile(file, JSON.stringify(cfg));
}

beforeAll(async () => {
  const t = await tempDir("custos-audit-rpc-");
  home = t.dir;
  cleanup = t.cleanup;
  const r = await initHome({ home, dev: true, kdfIterations: 1000 });
  const password = (await readFile(join(home, "dev-password"), "utf8")).trim();
  for (const a of r.accounts ?? []) keys[a.name] = await loadKeystoreFile(a.keyFile, password);
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await cleanup?.();
});

describe("the audit RPC", () => {
  it("without an index, every audit method says so", async () => {
    await setIndex(false);
    node = await CustosNode.start({ home, rpcListen: "127.0.0.1:0" });
    const c = new CustosClient(node.rpcUrl);
    const w = new Wallet(c, keys.operator as Sm2KeyPair);
    // blocks committed while the node has no index: it builds it from the ledger later
    for (let i = 0; i < 12; i++)
      await w.send({
        to: "ecny",
        method: "issue",
        args: [keys["consumer-1"]?.address, 100n + BigInt(i), `rc-${i}`],
      });
    await expect(new AuditClient(c).status()).rejects.toMatchObject({ code: "AUDIT_INDEX_DISABLED" });
    await node.stop();
    node = undefined;
  }, 60_000);

  it("a node upgraded with an existing ledger builds its index at start, with progress in its log", async () => {
    await setIndex(true);
    node = await CustosNode.start({ home, rpcListen: "127.0.0.1:0" });
    const a = new AuditClient(new CustosClient(node.rpcUrl));
    const t = await a.trace({ account: keys["consumer-1"]?.address as string });
    expect(t.rows).toHaveLength(12);
    expect(t.closing).toBe(String(12n * 100n + 66n));
    const log = await readFile(join(home, "logs", "node.log"), "utf8");
    expect(log).toMatch(/"module":"audit".*"msg":"audit index catching up from the ledger"/);
    expect(log).toMatch(/"msg":"audit index caught up"/);
    const s = await a.status();
    expect(s.indexedHeight).toBe(s.ledgerHeight);
  }, 60_000);

  it("answers events, transactions and the balance check; refuses bad parameters naming them", async () => {
    const a = new AuditClient(new CustosClient((node as CustosNode).rpcUrl));
    const seen: string[] = [];
    let cursor: string | null | undefined;
    do {
      const page = await a.events({
        name: "Issued",
        emitter: "ecny",
        limit: 5,
        ...(cursor ? { cursor } : {}),
      });
      expect(page.events.length).toBeLessThanOrEqual(5);
      for (const e of page.events) seen.push(`${e.height}:${e.tx}:${e.index}`);
      cursor = page.next;
    } while (cursor);
    expect(new Set(seen).size).toBe(12);
    expect(seen).toHaveLength(12);
    const txs = await a.txs(keys.operator?.address as string);
    expect(txs.txs).toHaveLength(12);
    const r = await a.reconcile({});
    expect(r).toMatchObject({ ok: true, check: { supply: "1266", sum: "1266" } });
    for (const [call, msg] of [
      [() => a.trace({ account: "0xnope" }), /account must be an address/],
      [() => a.report({ threshold: "1.5" }), /threshold is an amount in fen/],
      [() => a.report({ from: "yesterday" }), /from "yesterday": give a date/],
      [() => a.events({ cursor: "x" }), /cursor is the next of the previous page/],
      [() => a.report({ from: "2026-05-02", to: "2026-05-01" }), /to is before from/],
      [() => a.export({ kind: "trace" } as never), /trace an account, a programme/],
    ] as const)
      await expect(call()).rejects.toMatchObject({
        code: "INVALID_PARAMS",
        message: expect.stringMatching(msg),
      });
  }, 60_000);
});
