import { fileURLToPath } from "node:url";
import { exportToJson, parseExport, type VerifyReport, verifyExport } from "@custos/audit";
import { decode, encode } from "@custos/codec";
import { bundleContract } from "@custos/contract-sdk/harness";
import { VerifierPool } from "@custos/crypto";
import { decodeCertificate, decodeReceipt, encodeCertificate, encodeReceipt } from "@custos/types";
import { fromHex, nullLogger, toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditIndex } from "../../src/audit/auditIndex.js";
import { AuditService } from "../../src/audit/auditService.js";
import { CertifiedChain } from "../certifiedChain.js";
import { tempDir } from "../helpers.js";

/**
 * Issue 15 on a real certified chain (node's builder, executor and ledger; certificates signed
 * by a quorum of 4 validators, then of 3 after governance removed one): a prepaid journey over
 * two programmes, the audit index built from the ledger, traces and a report whose figures match
 * the chain's own, exports verified with no node, and each tampering caught with its entry and
 * its check named.
 */
const CONTRACT = fileURLToPath(new URL("../../../contracts/prepaid-card/src/contract.ts", import.meta.url));
const MEMBERS: [string, any][] = [
  ["operator", "operator"],
  ["regulator", "regulator"],
  ["committee-1", "committee"],
  ["committee-2", "committee"],
  ["bank", "institution"],
  ["bank-2", "institution"],
  ["merchant-1", "merchant"],
  ["merchant-2", "merchant"],
  ["consumer-1", "consumer"],
  ["consumer-2", "consumer"],
  ["consumer-3", "consumer"],
];

let chain: CertifiedChain;
let index: AuditIndex;
let service: AuditService;
let pool: VerifierPool;
const cleanups: (() => Promise<void>)[] = [];
let p1: string;
let p2: string;
const a = (name: string) => chain.address(name);
const H = (hex: string) => `0x${hex}`;

async function query(to: string, method: string, args: unknown[] = []) {
  const { Executor } = await import("../../src/execution/executor.js");
  const head = chain.ledger.head;
  return new Executor(chain.genesis, nullLogger).query(chain.ledger, to, method, encode(args), {
    height: head.height,
    timestamp: head.header.timestamp,
  });
}

const jsonOf = (v: unknown) =>
  JSON.parse(JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x)));

async function freshExport(q: Parameters<AuditService["export"]>[0]): Promise<Record<string, any>> {
  await index.waitFor(chain.ledger.head.height);
  return JSON.parse(JSON.stringify(exportToJson(await service.export(q))));
}

async function verify(doc: unknown): Promise<VerifyReport> {
  return verifyExport(parseExport(doc), { genesis: chain.genesis, verifier: pool });
}

function failed(r: VerifyReport, check: string, entry?: number) {
  return r.failures.some((f) => f.check === check && (entry === undefined || f.entry === entry));
}

beforeAll(async () => {
  const t = await tempDir("custos-audit-");
  cleanups.push(t.cleanup);
  chain = await CertifiedChain.create(`${t.dir}/ledger`, { members: MEMBERS });
  pool = new VerifierPool({ threads: 2 });
  const { code, codeHash } = await bundleContract(CONTRACT);
  const sub = await chain.send({
    from: "bank",
    to: "templates",
    method: "submit",
    args: ["prepaid-card", "1.0.0", "prepaid-card programme", ["prepaid"], "finance", code],
  });
  await chain.send({
    from: "committee-1",
    to: "governance",
    method: "vote",
    args: [sub.out.proposalId, true],
  });
  await chain.send({
    from: "committee-2",
    to: "governance",
    method: "vote",
    args: [sub.out.proposalId, true],
  });
  const inst = async (by: string, merchant: string, name: string) =>
    (
      await chain.send({
        from: by,
        to: "templates",
        method: "instantiate",
        args: [codeHash, JSON.stringify({ merchant: a(merchant), name })],
      })
    ).out.address as string;
  p1 = await inst("bank", "merchant-1", "Sunrise Gym");
  p2 = await inst("bank-2", "merchant-2", "Moonlight Spa");
  // customers of the two institutions (member.institution, by proposal)
  for (const [who, bank] of [
    ["consumer-1", "bank"],
    ["consumer-2", "bank-2"],
    ["consumer-3", "bank-2"],
    ["merchant-1", "bank"],
    ["merchant-2", "bank-2"],
  ] as const) {
    const p = await chain.send({
      from: "committee-1",
      to: "governance",
      method: "propose",
      args: ["member.institution", JSON.stringify({ address: a(who), institution: a(bank) })],
    });
    await chain.send({ from: "committee-2", to: "governance", method: "vote", args: [p.out.id, true] });
  }
  index = await AuditIndex.open(
    { dir: `${t.dir}/audit`, genesis: chain.genesis },
    { chain: chain.ledger, log: nullLogger },
  );
  index.start();
  service = new AuditService({ index, ledger: chain.ledger, genesis: chain.genesis });
}, 120_000);

afterAll(async () => {
  await index?.close();
  await chain?.ledger.close();
  await pool?.close();
  for (const c of cleanups) await c();
});

describe("a prepaid journey, traced, reported and exported", () => {
  it("runs: two programmes, purchases, uses, a card transfer, refunds, complaints, a freeze and forced refunds", async () => {
    const send = (from: string, to: string, method: string, args: unknown[] = [], value = 0n) =>
      chain.send({ from, to, method, args, value });
    await send("operator", "ecny", "issue", [a("consumer-1"), 200_000n, "rc-1"]);
    await send("operator", "ecny", "issue", [a("consumer-2"), 200_000n, "rc-2"]);
    await send("operator", "ecny", "issue", [a("consumer-3"), 100_000n, "rc-3"]);
    await send("merchant-1", p1, "addProduct", [
      { name: "500 yuan card", kind: "stored", faceValue: 50_000n },
    ]);
    await send("merchant-1", p1, "addProduct", [
      { name: "10 swims", kind: "count", uses: 10, price: 30_000n },
    ]);
    await send("merchant-2", p2, "addProduct", [
      { name: "200 yuan card", kind: "stored", faceValue: 20_000n },
    ]);
    await send("consumer-1", p1, "buy", [1], 50_000n); // card 1 of P1
    await send("consumer-1", p2, "buy", [1], 20_000n); // card 1 of P2: the same subject card:1
    await send("consumer-1", p1, "consume", [1, 15_000n]);
    await send("consumer-1", p1, "consume", [1, 5_000n]);
    await send("consumer-1", p1, "transferCard", [1, a("consumer-2")]);
    await send("consumer-2", p1, "consume", [1, 10_000n]);
    await send("consumer-2", p1, "buy", [2], 30_000n); // card 2 of P1
    await send("consumer-2", p1, "consume", [2, 2]);
    await send("merchant-1", p1, "claim", []);
    await send("consumer-2", p2, "buy", [1], 20_000n); // card 2 of P2
    await send("consumer-2", p2, "refund", [2]);
    await send("consumer-3", p2, "buy", [1], 20_000n); // card 3 of P2
    await send("consumer-3", p2, "refund", [3]);
    await send("consumer-1", p2, "refund", [1]);
    const hash = (s: string) => H(toHex(new TextEncoder().encode(s.padEnd(32, "."))));
    const file = async (who: string, programme: string, category: string) =>
      (await send(who, "complaints", "file", [programme, category, hash(`${who}${category}`)])).out
        .id as number;
    const c1 = await file("consumer-1", p2, "refund-refused");
    const c2 = await file("consumer-2", p2, "service-not-delivered");
    await file("consumer-3", p2, "misleading-sales");
    const c4 = await file("consumer-2", p1, "price-dispute");
    await send("regulator", "complaints", "classify", [c1, "valid", "serious"]);
    await send("regulator", "complaints", "classify", [c2, "valid", "minor"]);
    await send("regulator", "complaints", "classify", [c4, "invalid", "minor"]);
    await send("regulator", "complaints", "handle", [c4, "dismissed", hash("note")]);
    await send("consumer-2", p2, "buy", [1], 20_000n); // card 4 of P2
    await send("regulator", p2, "freeze", ["complaints about refunds"]);
    const forced = await send("regulator", p2, "forceRefund", [50]);
    expect(forced.out.refunded).toBe(1);
    // governance removes validator v3: later blocks are signed by v0-v2
    const rm = await send("committee-1", "governance", "propose", [
      "validator.remove",
      JSON.stringify({ name: "v3" }),
    ]);
    await send("committee-2", "governance", "vote", [rm.out.id, true]);
    expect(chain.ledger.head.validators.map((v) => v.name)).toEqual(["v0", "v1", "v2"]);
    await send("consumer-3", "ecny", "transfer", [a("consumer-1"), 1_234n]);
    await index.waitFor(chain.ledger.head.height);
    expect(index.height).toBe(chain.ledger.head.height);
  }, 120_000);

  it("traces a consumer across two merchants to the fen of its wallet", async () => {
    const t = (await service.trace({ account: a("consumer-1") }, { from: null, to: null })) as any;
    const wallet = (await query("ecny", "balance", [a("consumer-1")])) as any;
    expect(t.closing).toBe(String(wallet.balance));
    expect(t.atHeight).toBe(String(wallet.balance));
    expect(t.opening).toBe("0");
    const kinds = t.rows.filter((r: any) => r.delta !== "0").map((r: any) => [r.kind, r.delta, r.programme]);
    expect(kinds).toEqual([
      ["issue", "200000", null],
      ["purchase", "-50000", p1],
      ["purchase", "-20000", p2],
      ["refund", "20000", p2],
      ["transfer", "1234", null],
    ]);
    expect(BigInt(t.closing)).toBe(200_000n - 50_000n + 1_234n);
  });

  it("traces a card from purchase to refund, and a transferred card, as the programme reports them", async () => {
    const refunded = (await service.trace({ programme: p2, card: 1 }, { from: null, to: null })) as any;
    expect(refunded.rows.map((r: any) => [r.name, r.delta, r.balance])).toEqual([
      ["CardSold", "20000", "20000"],
      ["CardRefunded", "-20000", "0"],
    ]);
    const moved = (await service.trace({ programme: p1, card: 1 }, { from: null, to: null })) as any;
    expect(moved.rows.map((r: any) => [r.kind, r.amount, r.balance])).toEqual([
      ["purchase", "50000", "50000"],
      ["consumption", "15000", "35000"],
      ["consumption", "5000", "30000"],
      ["card-transfer", "0", "30000"],
      ["consumption", "10000", "20000"],
    ]);
    const card = (await query(p1, "card", [1])) as any;
    expect([card.paid, card.consumed, card.refunded, card.holder].map(String)).toEqual([
      "50000",
      "30000",
      "0",
      a("consumer-2"),
    ]);
    // a stored card at its face value: what is left on it is its open value
    expect(moved.closing).toBe(String(card.remaining));
    const prog = (await service.trace({ programme: p1 }, { from: null, to: null })) as any;
    expect(prog.closing).toBe(String(((await query("ecny", "balance", [p1])) as any).balance));
    const summary = (await query(p1, "escrowSummary")) as any;
    expect(prog.closing).toBe(String(summary.balance));
  });

  it("reports the day per merchant: sales, consumption, refunds, fulfilment, complaints and a risk level", async () => {
    const day = new Date(chain.genesis.timestamp + 8 * 3_600_000).toISOString().slice(0, 10);
    const { cstDayStart, DAY_MS } = await import("@custos/audit");
    const from = cstDayStart(day);
    const r = (await service.report({ from, to: from + DAY_MS - 1 }, null)) as any;
    const m1 = r.merchants.find((m: any) => m.merchant === a("merchant-1"));
    const m2 = r.merchants.find((m: any) => m.merchant === a("merchant-2"));
    expect(m1).toMatchObject({
      sold: "80000",
      consumed: "36000",
      refunded: "0",
      fulfilmentRateBps: 10000,
      complaints: { filed: 1, counted: 0 },
      risk: { level: "low", rating: "A" },
    });
    expect(m2).toMatchObject({
      sold: "80000",
      consumed: "0",
      refunded: "80000",
      forcedRefunds: "20000",
      fulfilmentRateBps: 0,
      refundRateBps: 10000,
      complaints: { filed: 3, counted: 3, serious: 1 },
      frozen: true,
      risk: { level: "high", rating: "D" },
    });
    const f1 = (await query(p1, "fulfilment")) as any;
    expect(String(f1.sold)).toBe(m1.sold);
    expect(String(f1.consumed)).toBe(m1.consumed);
    expect(r.byKind.map((k: any) => [k.kind, k.sold])).toEqual([
      ["count", "30000"],
      ["stored", "130000"],
    ]);
    expect(r.byDay).toHaveLength(2);
  });

  it("reconciles: every fen issued is in a wallet or a contract, recharges match one to one, institutions net", async () => {
    const r = (await service.reconcile({ from: null, to: null }, [
      { rechargeId: "rc-1", account: a("consumer-1"), amount: 200_000n },
      { rechargeId: "rc-2", account: a("consumer-2"), amount: 200_001n },
      { rechargeId: "rc-9", account: a("consumer-3"), amount: 1n },
    ])) as any;
    expect(r.check).toMatchObject({ supply: "500000", sum: "500000", difference: "0", ok: true });
    expect(r.differences).toEqual([]);
    expect(r.matching.matched.map((m: any) => m.rechargeId)).toEqual(["rc-1"]);
    expect(r.matching.mismatched.map((m: any) => [m.rechargeId, m.fields])).toEqual([["rc-2", ["amount"]]]);
    expect(r.matching.missingOnChain.map((m: any) => m.rechargeId)).toEqual(["rc-9"]);
    expect(r.matching.notInRecords.map((m: any) => m.rechargeId)).toEqual(["rc-3"]);
    const c = (await service.clearing({ from: null, to: null })) as any;
    const day = c.days[0];
    expect(day.total).toBe("0");
    // bank's customers: consumer-1 paid P2 20,000 (refunded back); bank's programme P1 was paid
    // 30,000 by consumer-2 (bank-2); consumer-3 (bank-2) paid consumer-1 1,234. Merchant-1's claim
    // from P1 stays within bank.
    const bank = day.positions.find((p: any) => p.institution === a("bank"));
    expect(bank).toMatchObject({ paid: "20000", received: "51234", net: "31234" });
    const bank2 = day.positions.find((p: any) => p.institution === a("bank-2"));
    expect(bank2).toMatchObject({ net: "-31234" });
  });
});

describe("exports verified with no node", () => {
  let doc: Record<string, any>;

  it("a consumer's trace verifies: signatures, proofs, certificates under the set in force, completeness, figures", async () => {
    doc = await freshExport({ kind: "trace", target: { account: a("consumer-1") }, from: null, to: null });
    expect(doc.validatorChanges).toHaveLength(1);
    const r = await verify(doc);
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.checked.links).toBe(doc.chains[0].links.length);
    expect(r.checked.txSignatures).toBe(doc.entries.length);
    expect(r.checked.certificates).toBe(doc.blocks.length);
    expect((r.result as any).closing).toBe(doc.result.closing);
  });

  it("a range trace starts from its anchor; card and programme traces, the report and the balance check verify", async () => {
    const mid = chain.committed[Math.floor(chain.committed.length / 2)]?.block.header.timestamp as number;
    for (const q of [
      { kind: "trace" as const, target: { account: a("consumer-2") }, from: mid, to: null },
      { kind: "trace" as const, target: { programme: p1, card: 1 }, from: null, to: null },
      { kind: "trace" as const, target: { programme: p2 }, from: mid, to: mid + 3_600_000 },
      { kind: "report" as const, programmes: [], from: null, to: null, threshold: 20_000n },
      { kind: "reconciliation" as const, accounts: [] },
    ]) {
      const d = await freshExport(q);
      const r = await verify(d);
      expect(
        r.failures,
        JSON.stringify(q, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
      ).toEqual([]);
    }
    const ranged = await freshExport({
      kind: "trace",
      target: { account: a("consumer-2") },
      from: mid,
      to: null,
    });
    expect(ranged.chains[0].anchor).not.toBeNull();
  });

  const linkEntry = (d: Record<string, any>, k: number) => d.chains[0].links[k].entry as number;

  it("fails on a changed amount in a receipt, naming the entry and the receipt proof", async () => {
    const d = structuredClone(doc);
    const e = d.entries.find((x: any) => {
      const r = decodeReceipt(fromHex(x.receipt));
      return r.events.some((ev) => ev.emitter === "ecny" && ev.name === "Transfer");
    });
    const r = decodeReceipt(fromHex(e.receipt));
    const ev = r.events.find((x) => x.name === "Transfer") as (typeof r.events)[number];
    const data = decode(ev.data, "x", 1024) as unknown[];
    ev.data = encode([data[0], data[1], (data[2] as bigint) + 1n]);
    e.receipt = H(toHex(encodeReceipt(r)));
    const v = await verify(d);
    expect(v.ok).toBe(false);
    expect(failed(v, "entry.receiptProof", e.id)).toBe(true);
    expect(v.failures.find((f) => f.check === "entry.receiptProof")?.message).toMatch(
      new RegExp(`^entry ${e.id} \\(tx 0x[0-9a-f]{16}… in block ${e.height}\\)`),
    );
  });

  it("fails on an entry dropped from the middle of a trace, naming the link after the gap", async () => {
    const d = structuredClone(doc);
    const links = d.chains[0].links;
    const mid = Math.floor(links.length / 2);
    const next = linkEntry(d, mid + 1);
    links.splice(mid, 1);
    const v = await verify(d);
    expect(failed(v, "chain.link", next)).toBe(true);
    expect(v.failures.find((f) => f.check === "chain.link")?.message).toMatch(/is missing from the export/);
  });

  it("fails on a dropped last entry: the state at the export's height proves a later head", async () => {
    const d = structuredClone(doc);
    const links = d.chains[0].links;
    links.pop();
    const v = await verify(d);
    expect(failed(v, "chain.head", links[links.length - 1].entry)).toBe(true);
  });

  it("fails on a changed proof node", async () => {
    const d = structuredClone(doc);
    const e = d.entries.find((x: any) => x.txProof.length > 0) ?? d.entries[0];
    if (e.txProof.length === 0) e.txProof.push(H("00".repeat(32)));
    else e.txProof[0] = H(`ff${e.txProof[0].slice(4)}`);
    const v = await verify(d);
    expect(failed(v, "entry.txProof", e.id)).toBe(true);
  });

  it("fails on a changed certificate signature, naming the block and its entries", async () => {
    const d = structuredClone(doc);
    const b = d.blocks.find((x: any) => d.entries.some((e: any) => e.height === x.height));
    const cert = decodeCertificate(fromHex(b.certificate));
    const signer = cert.signatures[1]?.validator; // which validators signed depends on timing
    const sig = cert.signatures[1]?.signature as Uint8Array;
    sig[10] = (sig[10] as number) ^ 0xff;
    b.certificate = H(toHex(encodeCertificate(cert)));
    const v = await verify(d);
    const f = v.failures.find((x) => x.check === "block.certificate" && x.block === b.height);
    expect(f?.message).toContain(`bad signature from validator ${signer}`);
    expect(f?.message).toMatch(/holds entries/);
  });

  it("fails on a certificate signed by a validator that governance had removed", async () => {
    const d = structuredClone(doc);
    const removedAt = chain.committed.find((c) =>
      c.receipts.some((r) => r.events.some((e) => e.name === "ValidatorRemoved")),
    )?.block.header.height as number;
    const b = d.blocks.find((x: any) => x.height > removedAt);
    const committed = chain.committed.find((c) => c.block.header.height === b.height);
    // v0, v1 and v3 sign: v3 (index 3 of the old set) is no longer a validator
    const forged = chain.certify(
      committed?.block as never,
      chain.validatorKeys.map((k) => k.publicKey),
      [0, 1, 3],
    );
    b.certificate = H(toHex(encodeCertificate(forged)));
    const v = await verify(d);
    const f = v.failures.find((x) => x.check === "block.certificate" && x.block === b.height);
    expect(f?.message).toMatch(/validator 3 is not in a set of 3/);
  });

  it("fails on an entry from another chain (the same chain id, other validators)", async () => {
    const t = await tempDir("custos-audit-other-");
    cleanups.push(t.cleanup);
    const other = await CertifiedChain.create(`${t.dir}/ledger`, { members: MEMBERS });
    const x = await tempDir("custos-audit-other-idx-");
    cleanups.push(x.cleanup);
    // as many blocks as ours, so that the foreign one sits at a height ours does not export
    for (let i = 0; i < chain.ledger.head.height + 5; i++) await other.block([]);
    await other.send({
      from: "operator",
      to: "ecny",
      method: "issue",
      args: [other.address("consumer-1"), 5n, "rc-x"],
    });
    const oi = await AuditIndex.open(
      { dir: x.dir, genesis: other.genesis },
      { chain: other.ledger, log: nullLogger },
    );
    oi.start();
    await oi.waitFor(other.ledger.head.height);
    const foreign = exportToJson(
      await new AuditService({ index: oi, ledger: other.ledger, genesis: other.genesis }).export({
        kind: "trace",
        target: { account: other.address("consumer-1") },
        from: null,
        to: null,
      }),
    ) as any;
    await oi.close();
    await other.ledger.close();
    const d = structuredClone(doc);
    const fe = foreign.entries[0];
    const id = d.entries.length;
    d.entries.push({ ...fe, id });
    if (!d.blocks.some((b: any) => b.height === fe.height))
      d.blocks.push(foreign.blocks.find((b: any) => b.height === fe.height));
    d.chains[0].links.push({ entry: id, event: 0 });
    const v = await verify(d);
    expect(v.ok).toBe(false);
    expect(
      v.failures.some(
        (f) => (f.check === "block.validatorSet" || f.check === "block.certificate") && f.block === fe.height,
      ),
    ).toBe(true);
    expect(v.failures.some((f) => f.check === "chain.link" && f.entry === id)).toBe(true);
  });

  it("refuses another chain's genesis", async () => {
    const t = await tempDir("custos-audit-g-");
    cleanups.push(t.cleanup);
    const other = await CertifiedChain.create(`${t.dir}/ledger`, { members: MEMBERS });
    await other.ledger.close();
    const v = await verifyExport(parseExport(doc), { genesis: other.genesis });
    expect(v.failures.map((f) => f.check)).toEqual(["genesis"]);
  });

  it("a figure changed in the export's result is named", async () => {
    const d = structuredClone(doc);
    d.result.closing = String(BigInt(d.result.closing) + 1n);
    const v = await verify(d);
    expect(v.failures).toEqual([
      expect.objectContaining({
        check: "result",
        message: expect.stringMatching(/^result\.closing: the export says/),
      }),
    ]);
  });
});

describe("the audit index", () => {
  it("is rebuilt from the ledger when its directory is gone, to the same answers", async () => {
    const before = await service.trace({ account: a("consumer-2") }, { from: null, to: null });
    const t = await tempDir("custos-audit-rebuild-");
    cleanups.push(t.cleanup);
    const fresh = await AuditIndex.open(
      { dir: t.dir, genesis: chain.genesis },
      { chain: chain.ledger, log: nullLogger },
    );
    expect(fresh.height).toBe(0);
    fresh.start();
    await fresh.waitFor(chain.ledger.head.height);
    const again = await new AuditService({
      index: fresh,
      ledger: chain.ledger,
      genesis: chain.genesis,
    }).trace({ account: a("consumer-2") }, { from: null, to: null });
    expect(jsonOf(again)).toEqual(jsonOf(before));
    await fresh.close();
  });
});
