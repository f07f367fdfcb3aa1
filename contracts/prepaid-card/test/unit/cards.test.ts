import { describe, expect, it } from "vitest";
import { A, ALICE, BOB, CAROL, DAY, events, ok, programme, totalEcny } from "../programme.js";

const m = { caller: A.merchant };
const alice = { caller: ALICE };

async function withProducts(params: Record<string, unknown> = {}) {
  const h = await programme(params);
  ok(await h.call("addProduct", [{ name: "1,000 yuan card", kind: "stored", faceValue: 100_000n }], m));
  ok(
    await h.call(
      "addProduct",
      [{ name: "3 massages", kind: "count", uses: 3, price: 10_000n, validDays: 60 }],
      m,
    ),
  );
  ok(
    await h.call(
      "addProduct",
      [{ name: "monthly", kind: "period", period: "month", price: 30_000n, usesPerDay: 1 }],
      m,
    ),
  );
  ok(
    await h.call(
      "addProduct",
      [{ name: "top-up", kind: "stored", open: true, minAmount: 100n, maxAmount: 200_000n }],
      m,
    ),
  );
  return h;
}

describe("buying a card: the consumer's e-CNY goes into escrow", () => {
  it("records what was paid and escrowed; wrong amounts and wrong buyers change nothing", async () => {
    const h = await withProducts();
    const total = totalEcny(h);
    for (const [value, caller, code] of [
      [99_999n, ALICE, "WRONG_AMOUNT"],
      [100_001n, ALICE, "WRONG_AMOUNT"],
      [0n, ALICE, "WRONG_AMOUNT"],
      [100_000n, A.merchant, "NOT_CONSUMER"],
      [100_000n, A.regulator, "NOT_CONSUMER"],
    ] as const) {
      h.balances.set(caller, h.balanceOf(caller) + value);
      const storage = new Map(h.storage);
      expect((await h.call("buy", [1], { caller, value })).error?.code).toBe(code);
      expect(h.storage).toEqual(storage);
      expect(h.balanceOf(h.self)).toBe(0n);
      h.balances.set(caller, h.balanceOf(caller) - value);
    }
    expect((await h.call("buy", [7], { caller: ALICE, value: 1n })).error?.code).toBe("PRODUCT_NOT_FOUND");
    expect((await h.call("buy", [1, 5n], { caller: ALICE, value: 100_000n })).error?.code).toBe(
      "INVALID_ARGUMENTS",
    );
    const r = await h.call("buy", [1], { caller: ALICE, value: 100_000n });
    expect(ok(r)).toMatchObject({
      id: 1,
      kind: "stored",
      holder: ALICE,
      status: "active",
      paid: 100_000n,
      escrow: 100_000n,
      consumed: 0n,
      remaining: 100_000n,
      coolingOff: true,
      coolingOffUntil: h.time + 7 * DAY,
      expiresAt: h.time + 730 * DAY,
    });
    expect(events(r, "CardSold")).toEqual([
      { card: 1, product: 1, holder: ALICE, paid: 100_000n, escrowed: 100_000n, priceId: 0, basis: "list" },
    ]);
    expect(h.balanceOf(h.self)).toBe(100_000n);
    expect(totalEcny(h)).toBe(total);
  });

  it("open-amount cards take any amount between the product's bounds, never over the card cap", async () => {
    const h = await programme({ cardCap: 150_000n });
    const spec = { name: "top-up", kind: "stored", open: true, minAmount: 100n, maxAmount: 140_000n };
    ok(await h.call("addProduct", [spec], m));
    expect((await h.call("buy", [1], { caller: ALICE, value: 50n })).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await h.call("buy", [1, 50n], { caller: ALICE, value: 50n })).error?.code).toBe("WRONG_AMOUNT");
    expect((await h.call("buy", [1, 140_001n], { caller: ALICE, value: 140_001n })).error?.code).toBe(
      "WRONG_AMOUNT",
    );
    expect((await h.call("buy", [1, 150_001n], { caller: ALICE, value: 150_001n })).error?.code).toBe(
      "OVER_CARD_CAP",
    );
    expect((await h.call("buy", [1, 600n], { caller: ALICE, value: 500n })).error?.code).toBe("WRONG_AMOUNT");
    expect(ok(await h.call("buy", [1, 12_345n], { caller: ALICE, value: 12_345n }))).toMatchObject({
      paid: 12_345n,
      units: 12_345n,
      basis: "open",
    });
  });

  it("any other method refuses attached e-CNY (it would sit outside escrow)", async () => {
    const h = await withProducts();
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    h.balances.set(A.merchant, 100n);
    for (const [method, args] of [
      ["consume", [1, 100n]],
      ["refund", [1]],
      ["settle", []],
      ["addProduct", [{ name: "x", kind: "count", uses: 1, price: 1n }]],
    ] as const) {
      const r = await h.call(method, [...args], {
        caller: method === "addProduct" ? A.merchant : ALICE,
        value: 5n,
      });
      expect(r.error?.code, method).toBe("VALUE_NOT_ACCEPTED");
    }
    expect(h.balanceOf(h.self)).toBe(100_000n);
  });
});

describe("consumption (核销): the holder signs; the consumed part leaves escrow for the merchant", () => {
  it("stored value by amount; only the holder; low-balance reminder once when it crosses", async () => {
    const h = await withProducts({ reminders: { lowBalance: 20_000n } });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    expect((await h.call("consume", [1, 1_000n], m)).error?.code).toBe("NOT_HOLDER");
    expect((await h.call("consume", [1, 1_000n], { caller: BOB })).error?.code).toBe("NOT_HOLDER");
    expect((await h.call("consume", [2, 1_000n], alice)).error?.code).toBe("CARD_NOT_FOUND");
    expect((await h.call("consume", [1, 100_001n], alice)).error?.code).toBe("INSUFFICIENT_BALANCE");
    expect((await h.call("consume", [1, 0n], alice)).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await h.call("consume", [1, 1.5], alice)).error?.code).toBe("INVALID_ARGUMENTS");
    const r = await h.call("consume", [1, 30_000n], alice);
    expect(ok(r)).toMatchObject({
      remaining: 70_000n,
      consumed: 30_000n,
      escrow: 70_000n,
      released: 30_000n,
    });
    expect(events(r, "CardConsumed")).toEqual([
      { card: 1, holder: ALICE, quantity: 30_000n, remaining: 70_000n, consumed: 30_000n, released: 30_000n },
    ]);
    expect(events(r, "LowBalance")).toEqual([]);
    const low = await h.call("consume", [1, 55_000n], alice);
    expect(events(low, "LowBalance")).toEqual([{ card: 1, holder: ALICE, balance: 15_000n }]);
    expect(events(await h.call("consume", [1, 5_000n], alice), "LowBalance")).toEqual([]);
    // the merchant is paid what was consumed, nothing more
    expect(ok(await h.call("claim", [], m))).toEqual({ amount: 90_000n, claimed: 90_000n });
    expect(h.balanceOf(A.merchant)).toBe(90_000n);
    expect(h.balanceOf(h.self)).toBe(10_000n);
    expect((await h.call("claim", [], m)).error?.code).toBe("NOTHING_TO_CLAIM");
    expect((await h.call("claim", [], alice)).error?.code).toBe("NOT_MERCHANT");
    const last = await h.call("consume", [1, 10_000n], alice);
    expect(ok(last)).toMatchObject({ status: "finished", remaining: 0n, escrow: 0n });
    expect((await h.call("consume", [1, 1n], alice)).error?.code).toBe("CARD_FINISHED");
    expect((await h.call("refund", [1], alice)).error?.code).toBe("CARD_FINISHED");
  });

  it("count cards per use, rounding down until the last use releases the rest; few-uses reminder", async () => {
    const h = await withProducts({ reminders: { usesLeft: 1 } });
    ok(await h.call("buy", [2], { caller: ALICE, value: 10_000n }));
    const first = await h.call("consume", [1], alice);
    expect(ok(first)).toMatchObject({ remaining: 2n, consumed: 3_333n, escrow: 6_667n });
    expect(events(first, "FewUsesLeft")).toEqual([]);
    expect((await h.call("consume", [1, 3], alice)).error?.code).toBe("NOT_ENOUGH_USES");
    const second = await h.call("consume", [1, 1], alice);
    expect(ok(second)).toMatchObject({ remaining: 1n, consumed: 6_666n, escrow: 3_334n });
    expect(events(second, "FewUsesLeft")).toEqual([{ card: 1, holder: ALICE, usesLeft: 1n }]);
    expect(ok(await h.call("consume", [1], alice))).toMatchObject({
      status: "finished",
      consumed: 10_000n,
      escrow: 0n,
      released: 10_000n,
    });
  });

  it("period cards accrue to the merchant pro rata by block time; a daily use limit", async () => {
    const h = await withProducts();
    const t0 = h.time;
    ok(await h.call("buy", [3], { caller: BOB, value: 30_000n }));
    ok(await h.call("consume", [1], { caller: BOB }));
    expect((await h.call("consume", [1], { caller: BOB })).error?.code).toBe("DAILY_LIMIT_REACHED");
    expect((await h.call("consume", [1, 2], { caller: BOB })).error?.code).toBe("INVALID_ARGUMENTS");
    h.advance(10 * DAY);
    expect(await h.query("card", [1])).toMatchObject({
      consumed: 10_000n,
      escrow: 20_000n,
      remaining: BigInt(20 * DAY),
    });
    ok(await h.call("consume", [1], { caller: BOB }));
    h.advance(DAY / 3); // 10⅓ days: 10,333.33... fen, rounded down
    expect(ok(await h.call("claim", [], m))).toEqual({ amount: 10_333n, claimed: 10_333n });
    h.advance(20 * DAY);
    expect((await h.call("consume", [1], { caller: BOB })).error?.code).toBe("CARD_FINISHED");
    expect(await h.query("card", [1])).toMatchObject({ status: "finished", consumed: 30_000n, escrow: 0n });
    expect(ok(await h.call("claim", [], m)).amount).toBe(19_667n);
    expect(h.balanceOf(h.self)).toBe(0n);
    expect(t0 + 30 * DAY).toBeLessThan(h.time);
  });

  it("expiry: a reminder before the term ends, then no use, and the unconsumed value refundable", async () => {
    const h = await withProducts({ reminders: { expiryDays: 10 } });
    ok(await h.call("buy", [2], { caller: ALICE, value: 10_000n })); // 60 days
    ok(await h.call("buy", [2], { caller: BOB, value: 10_000n }));
    h.advance(45 * DAY);
    expect(events(await h.call("consume", [1], alice), "CardExpiring")).toEqual([]);
    h.advance(6 * DAY);
    const used = await h.call("consume", [1], alice);
    expect(events(used, "CardExpiring")).toEqual([{ card: 1, holder: ALICE, expiresAt: h.time + 9 * DAY }]);
    expect(events(await h.call("consume", [1], alice), "CardExpiring")).toEqual([]);
    // Bob never used his: the sweep (anyone may run it) reminds him, once
    const swept = await h.call("remind", [], { caller: A.auditor });
    expect(ok(swept)).toEqual({ reminded: 1 });
    expect(events(swept, "CardExpiring")).toEqual([{ card: 2, holder: BOB, expiresAt: h.time + 9 * DAY }]);
    expect(ok(await h.call("remind", [], { caller: A.auditor }))).toEqual({ reminded: 0 });
    h.advance(9 * DAY);
    expect((await h.call("consume", [2], { caller: BOB })).error?.code).toBe("CARD_EXPIRED");
    expect(await h.query("card", [2])).toMatchObject({ status: "expired", expiresAt: null });
    expect((await h.call("transferCard", [2, CAROL], { caller: BOB })).error?.code).toBe("CARD_EXPIRED");
    // the merchant never gets the unconsumed value of an expired card; the holder takes it back
    const r = ok(await h.call("refund", [2], { caller: BOB }));
    expect(r).toEqual({ card: 2, amount: 10_000n, fee: 0n, reason: "card-expired" });
  });

  it("risk flags: abnormally frequent use of one card in a day, of the programme in an hour", async () => {
    const h = await withProducts({ risk: { cardUsesPerDay: 3, programmeUsesPerHour: 5 } });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    ok(await h.call("buy", [1], { caller: BOB, value: 100_000n }));
    const flags = [];
    for (let i = 0; i < 5; i++)
      flags.push(...events(await h.call("consume", [1, 100n], alice), "RiskFlagged"));
    expect(flags).toEqual([{ scope: "card", card: 1, holder: ALICE, uses: 4, window: "day", threshold: 3 }]);
    const prog = events(await h.call("consume", [2, 100n], { caller: BOB }), "RiskFlagged");
    expect(prog).toEqual([{ scope: "programme", uses: 6, window: "hour", threshold: 5 }]);
    h.advance(DAY);
    expect(events(await h.call("consume", [1, 100n], alice), "RiskFlagged")).toEqual([]);
  });
});

describe("refunds of the unconsumed escrowed part", () => {
  it("in full within cooling-off while unused, even when only 60 % is escrowed; never twice", async () => {
    const h = await withProducts({ escrowShareBps: 6000 });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    expect((await h.call("refund", [1], { caller: BOB })).error?.code).toBe("NOT_HOLDER");
    h.advance(7 * DAY - 1);
    const r = await h.call("refund", [1], alice);
    expect(ok(r)).toEqual({ card: 1, amount: 100_000n, fee: 0n, reason: "cooling-off" });
    expect(events(r, "CardRefunded")).toEqual([
      { card: 1, holder: ALICE, amount: 100_000n, fee: 0n, reason: "cooling-off" },
    ]);
    expect(h.balanceOf(ALICE)).toBe(10_000_000n);
    expect((await h.call("refund", [1], alice)).error?.code).toBe("ALREADY_REFUNDED");
    expect((await h.call("consume", [1, 1n], alice)).error?.code).toBe("CARD_REFUNDED");
    expect((await h.call("transferCard", [1, BOB], alice)).error?.code).toBe("CARD_REFUNDED");
    expect(await h.query("escrowSummary")).toMatchObject({
      sold: 100_000n,
      escrowed: 0n,
      refunded: 100_000n,
      due: 0n,
      liveCards: 0,
    });
  });

  it("after cooling-off only on the grounds the parameters give; the held share went to the merchant", async () => {
    const h = await withProducts({ escrowShareBps: 6000 });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    ok(await h.call("buy", [1], { caller: BOB, value: 100_000n }));
    ok(await h.call("consume", [2, 10_000n], { caller: BOB }));
    expect((await h.call("refund", [2], { caller: BOB })).error?.code).toBe("CARD_USED");
    h.advance(7 * DAY);
    expect((await h.call("refund", [1], alice)).error?.code).toBe("COOLING_OFF_OVER");
    // cooling-off is over for Alice's card: the 40 % not escrowed is the merchant's
    expect(ok(await h.call("settle", [], { caller: A.auditor }))).toEqual({
      cooled: 1,
      accrued: 0,
      released: 40_000n,
    });
    expect(await h.query("card", [1])).toMatchObject({
      escrow: 60_000n,
      released: 40_000n,
      coolingOff: false,
    });
    // Bob: 90,000 unconsumed, 60 % of it escrowed
    expect(await h.query("card", [2])).toMatchObject({ escrow: 54_000n, released: 46_000n });
  });

  it("on request with a fee, where the parameters allow it", async () => {
    const h = await withProducts({ escrowShareBps: 6000, refund: { afterCoolingOff: true, feeBps: 500 } });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    h.advance(8 * DAY);
    const r = ok(await h.call("refund", [1], alice));
    expect(r).toEqual({ card: 1, amount: 57_000n, fee: 3_000n, reason: "on-request" });
    expect(await h.query("escrowSummary")).toMatchObject({
      released: 43_000n,
      refunded: 57_000n,
      due: 43_000n,
    });
    expect(ok(await h.call("claim", [], m)).amount).toBe(43_000n);
  });
});

describe("transfer, loss report (挂失), cancellation", () => {
  it("a card moves to another consumer, who uses it; the old holder no longer can", async () => {
    const h = await withProducts({ escrowShareBps: 5000 });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    expect((await h.call("transferCard", [1, BOB], { caller: BOB })).error?.code).toBe("NOT_HOLDER");
    expect((await h.call("transferCard", [1, ALICE], alice)).error?.code).toBe("SAME_HOLDER");
    expect((await h.call("transferCard", [1, A.merchant], alice)).error?.code).toBe("NOT_CONSUMER");
    expect((await h.call("transferCard", [1, A.outsider], alice)).error?.code).toBe("NOT_CONSUMER");
    expect((await h.call("transferCard", [1, "bob"], alice)).error?.code).toBe("INVALID_ARGUMENTS");
    const r = await h.call("transferCard", [1, BOB], alice);
    // a transfer ends cooling-off: the non-escrowed half is the merchant's now
    expect(ok(r)).toMatchObject({ holder: BOB, coolingOff: false, escrow: 50_000n, released: 50_000n });
    expect(events(r, "CardTransferred")).toEqual([{ card: 1, from: ALICE, to: BOB }]);
    expect((await h.call("consume", [1, 100n], alice)).error?.code).toBe("NOT_HOLDER");
    ok(await h.call("consume", [1, 100n], { caller: BOB }));
    expect(((await h.query("cardsOf", [BOB])) as { id: number }[]).map((c) => c.id)).toEqual([1]);
    expect(await h.query("cardsOf", [ALICE])).toEqual([]);
  });

  it("a card reported lost cannot be used, transferred or refunded until the report is cancelled", async () => {
    const h = await withProducts();
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    expect((await h.call("reportLost", [1], { caller: BOB })).error?.code).toBe("NOT_HOLDER");
    expect((await h.call("reportLost", [1], m)).error?.code).toBe("NOT_HOLDER");
    const r = await h.call("reportLost", [1], alice);
    expect(ok(r)).toMatchObject({ status: "lost", expiresAt: null });
    expect(events(r, "CardLost")).toEqual([{ card: 1, holder: ALICE, by: ALICE }]);
    expect((await h.call("reportLost", [1], alice)).error?.code).toBe("CARD_LOST");
    expect((await h.call("consume", [1, 100n], alice)).error?.code).toBe("CARD_LOST");
    expect((await h.call("transferCard", [1, BOB], alice)).error?.code).toBe("CARD_LOST");
    expect((await h.call("refund", [1], alice)).error?.code).toBe("CARD_LOST");
    expect((await h.call("cancelLoss", [1], { caller: BOB })).error?.code).toBe("NOT_HOLDER");
    ok(await h.call("cancelLoss", [1], alice));
    expect((await h.call("cancelLoss", [1], alice)).error?.code).toBe("CARD_NOT_LOST");
    ok(await h.call("consume", [1, 100n], alice));
    // the regulator may report and cancel on a holder's behalf
    ok(await h.call("reportLost", [1], { caller: A.regulator }));
    ok(await h.call("cancelLoss", [1], { caller: A.regulator }));
  });

  it("a lost period card stops accruing and its term is extended by the time it was lost", async () => {
    const h = await withProducts({ coolingOffDays: 0 });
    const t0 = h.time;
    ok(await h.call("buy", [3], { caller: BOB, value: 30_000n }));
    h.advance(10 * DAY);
    ok(await h.call("reportLost", [1], { caller: BOB }));
    h.advance(10 * DAY);
    expect(await h.query("card", [1])).toMatchObject({ consumed: 10_000n, remaining: BigInt(20 * DAY) });
    ok(await h.call("cancelLoss", [1], { caller: BOB }));
    h.advance(5 * DAY);
    expect(await h.query("card", [1])).toMatchObject({ consumed: 15_000n, expiresAt: t0 + 40 * DAY });
  });
});
