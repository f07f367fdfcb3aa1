import { describe, expect, it } from "vitest";
import { A, DAY, events, ok, programme, type Receipt, totalEcny } from "../programme.js";

const CARDS = Number(process.env.PREPAID_SCALE_CARDS ?? 10_000);
const GAS_LIMIT = 2_000_000n; // VM_LIMITS.gasPerCall

describe(`a programme with ${CARDS} cards`, () => {
  it("the regulator's forced refunds finish in a bounded number of transactions, each within the gas limit", {
    timeout: 600_000,
  }, async () => {
    const h = await programme({ escrowShareBps: 7000, coolingOffDays: 3 });
    const m = { caller: A.merchant };
    ok(await h.call("addProduct", [{ name: "gift", kind: "stored", faceValue: 50_000n }], m));
    ok(await h.call("addProduct", [{ name: "ten", kind: "count", uses: 10, price: 20_000n }], m));
    ok(await h.call("addProduct", [{ name: "month", kind: "period", period: "month", price: 30_000n }], m));
    const consumers = Array.from(
      { length: 200 },
      (_, i) => `0x${(0x7000 + i).toString(16).padStart(40, "0")}`,
    );
    for (const c of consumers) {
      h.setMember(c, ["consumer"]);
      h.balances.set(c, 100_000_000n);
    }
    const total = totalEcny(h);
    const gas: Record<string, bigint[]> = {};
    const record = (name: string, r: Receipt) => {
      ok(r);
      gas[name] ??= [];
      gas[name].push(r.gasUsed);
    };
    const prices = [50_000n, 20_000n, 30_000n];
    for (let i = 0; i < CARDS; i++) {
      const product = (i % 3) + 1;
      const r = await h.call("buy", [product], {
        caller: consumers[i % consumers.length],
        value: prices[product - 1],
      });
      record(`buy (${["stored", "count", "period"][product - 1]})`, r);
      if (i % 4 === 0) {
        const c = await h.call("consume", product === 1 ? [i + 1, 1_000n] : [i + 1], {
          caller: consumers[i % consumers.length],
        });
        record(`consume (${["stored", "count", "period"][product - 1]})`, c);
      }
      if (i % 1000 === 999) h.advance(DAY / 2);
    }
    h.advance(10 * DAY);
    const claim = await h.call("claim", [100], m);
    record("claim (settling 100 cards)", claim);
    const freeze = await h.call("freeze", ["merchant insolvent"], { caller: A.regulator });
    record("freeze", freeze);
    const before = (await h.query("escrowSummary")) as { liveCards: number };
    expect(before.liveCards).toBe(CARDS);

    const batches: { cards: number; gas: bigint }[] = [];
    let after = 0;
    for (;;) {
      const r = await h.call("forceRefund", [60, after], { caller: A.regulator });
      const out = ok<{ refunded: number; next: number | null; done: boolean }>(r);
      expect(r.gasUsed).toBeLessThan(GAS_LIMIT);
      expect(events(r, "CardsRefunded")).toHaveLength(1);
      batches.push({ cards: out.refunded, gas: r.gasUsed });
      if (out.done) break;
      after = out.next as number;
      expect(batches.length).toBeLessThan(CARDS / 60 + 2);
    }
    expect(batches.length).toBe(Math.ceil(CARDS / 60));
    // what is left is the merchant's (released before the freeze, or accrued up to it), to claim once unfrozen
    const end = (await h.query("escrowSummary")) as Record<string, unknown>;
    expect(end).toMatchObject({ escrowed: 0n, liveCards: 0, refundedCards: CARDS, balance: end.due });
    expect(totalEcny(h)).toBe(total);
    const inv = (await h.query("checkInvariant", [0, 200])) as { ok: boolean };
    expect(inv.ok).toBe(true);

    const stats = (xs: bigint[]) => {
      const s = [...xs].sort((a, b) => (a < b ? -1 : 1));
      return { n: s.length, min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
    };
    const report: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(gas)) report[k] = stats(v);
    report["forceRefund batch of 60"] = stats(batches.filter((b) => b.cards === 60).map((b) => b.gas));
    report.batches = batches.length;
    console.log(JSON.stringify(report, (_k, v) => (typeof v === "bigint" ? Number(v) : v), 2));
  });
});
