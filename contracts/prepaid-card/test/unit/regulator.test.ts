import { describe, expect, it } from "vitest";
import { A, ALICE, BOB, CAROL, DAVE, DAY, events, ok, programme, totalEcny } from "../programme.js";

const m = { caller: A.merchant };
const reg = { caller: A.regulator };

async function withCards(params: Record<string, unknown> = {}) {
  const h = await programme(params);
  ok(await h.call("addProduct", [{ name: "1,000 yuan card", kind: "stored", faceValue: 100_000n }], m));
  ok(await h.call("addProduct", [{ name: "monthly", kind: "period", period: "month", price: 30_000n }], m));
  return h;
}

describe("the regulator freezes and unfreezes the programme", () => {
  it("a frozen programme sells nothing, serves nothing, pays the merchant nothing; refunds stay open", async () => {
    const h = await withCards({ escrowShareBps: 5000 });
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    ok(await h.call("buy", [1], { caller: BOB, value: 100_000n }));
    ok(await h.call("consume", [1, 20_000n], { caller: ALICE }));
    expect((await h.call("freeze", ["audit"], m)).error?.code).toBe("NOT_REGULATOR");
    expect((await h.call("freeze", ["audit"], { caller: ALICE })).error?.code).toBe("NOT_REGULATOR");
    expect((await h.call("freeze", [""], reg)).error?.code).toBe("INVALID_ARGUMENTS");
    const f = await h.call("freeze", ["complaints about closure"], reg);
    expect(events(f, "ProgrammeFrozen")).toEqual([{ by: A.regulator, reason: "complaints about closure" }]);
    expect((await h.call("freeze", ["again"], reg)).error?.code).toBe("ALREADY_FROZEN");
    expect(await h.query("programme")).toMatchObject({
      status: "frozen",
      frozenReason: "complaints about closure",
    });
    const refused = [
      [await h.call("buy", [1], { caller: CAROL, value: 100_000n }), "PROGRAMME_FROZEN"],
      [await h.call("consume", [1, 100n], { caller: ALICE }), "PROGRAMME_FROZEN"],
      [await h.call("transferCard", [1, CAROL], { caller: ALICE }), "PROGRAMME_FROZEN"],
      [await h.call("claim", [], m), "PROGRAMME_FROZEN"],
      [await h.call("addProduct", [{ name: "x", kind: "count", uses: 1, price: 1n }], m), "PROGRAMME_FROZEN"],
      [await h.call("announceClosure", ["bye"], m), "PROGRAMME_FROZEN"],
    ] as const;
    for (const [r, code] of refused) expect(r.error?.code).toBe(code);
    expect(refused[1][0].error?.message).toContain("complaints about closure");
    // a holder takes the escrowed, unconsumed part back: 50 % of 80,000
    expect(ok(await h.call("refund", [1], { caller: ALICE }))).toMatchObject({
      amount: 40_000n,
      reason: "programme-frozen",
    });
    expect((await h.call("unfreeze", [], m)).error?.code).toBe("NOT_REGULATOR");
    ok(await h.call("unfreeze", [], reg));
    expect((await h.call("unfreeze", [], reg)).error?.code).toBe("PROGRAMME_NOT_FROZEN");
    // Bob's first use ends his cooling-off: the half not escrowed is released with the 100 fen used
    ok(await h.call("consume", [2, 100n], { caller: BOB }));
    expect(ok(await h.call("claim", [], m)).amount).toBe(60_000n + 50_050n);
  });

  it("a freeze pauses period accrual and extends every term by its length", async () => {
    const h = await withCards({ coolingOffDays: 0 });
    const t0 = h.time;
    ok(await h.call("buy", [2], { caller: BOB, value: 30_000n }));
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    h.advance(10 * DAY);
    ok(await h.call("freeze", ["inspection"], reg));
    h.advance(10 * DAY);
    expect(await h.query("card", [1])).toMatchObject({ consumed: 10_000n, expiresAt: null });
    ok(await h.call("unfreeze", [], reg));
    h.advance(10 * DAY);
    expect(await h.query("card", [1])).toMatchObject({ consumed: 20_000n, expiresAt: t0 + 40 * DAY });
    expect(await h.query("card", [2])).toMatchObject({ expiresAt: t0 + 740 * DAY });
    expect(ok(await h.call("claim", [], m)).amount).toBe(20_000n);
  });
});

describe("forced refunds in bounded batches", () => {
  it("refund every live card to its holder, batch by batch; lost cards wait for a reissue", async () => {
    const h = await withCards({ escrowShareBps: 5000 });
    const total = totalEcny(h);
    const buyers = [ALICE, BOB, CAROL, DAVE, ALICE, BOB];
    for (const b of buyers) ok(await h.call("buy", [1], { caller: b, value: 100_000n }));
    // 50 % escrowed: 60,000 unconsumed, 30,000 of it in escrow; 70,000 released to the merchant
    ok(await h.call("consume", [1, 40_000n], { caller: ALICE }));
    ok(await h.call("refund", [2], { caller: BOB })); // cooling-off: gone already
    ok(await h.call("reportLost", [3], { caller: CAROL }));
    expect((await h.call("forceRefund", [], reg)).error?.code).toBe("PROGRAMME_NOT_FROZEN");
    expect((await h.call("forceRefund", [], { caller: ALICE })).error?.code).toBe("NOT_REGULATOR");
    expect((await h.call("forceRefund", [], m)).error?.code).toBe("PROGRAMME_NOT_CLOSED");
    expect((await h.call("forceRefund", [], { caller: A.institution })).error?.code).toBe(
      "PROGRAMME_NOT_CLOSED",
    );
    ok(await h.call("freeze", ["merchant vanished"], reg));
    expect((await h.call("forceRefund", [0], reg)).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await h.call("forceRefund", [101], reg)).error?.code).toBe("INVALID_ARGUMENTS");
    const first = await h.call("forceRefund", [2], reg);
    expect(ok(first)).toEqual({ refunded: 1, amount: 30_000n, skipped: [3], next: 3, done: false });
    expect(events(first, "CardsRefunded")).toEqual([
      { by: A.regulator, cards: [[1, 30_000n]], skipped: [3], amount: 30_000n, next: 3 },
    ]);
    const second = ok(await h.call("forceRefund", [2, 3], reg));
    expect(second).toEqual({ refunded: 2, amount: 200_000n, skipped: [], next: 5, done: false });
    expect(ok(await h.call("forceRefund", [2, 5], reg))).toEqual({
      refunded: 1,
      amount: 100_000n,
      skipped: [],
      next: null,
      done: true,
    });
    // Carol's lost card: reissued to her, then refunded
    const reissued = ok(await h.call("reissue", [3], reg));
    expect(reissued).toMatchObject({ id: 7, holder: CAROL, escrow: 100_000n, reissuedFrom: 3 });
    expect(ok(await h.call("forceRefund", [], reg))).toMatchObject({
      refunded: 1,
      amount: 100_000n,
      done: true,
    });
    expect(ok(await h.call("forceRefund", [], reg))).toEqual({
      refunded: 0,
      amount: 0n,
      skipped: [],
      next: null,
      done: true,
    });
    expect(await h.query("escrowSummary")).toMatchObject({ escrowed: 0n, liveCards: 0, due: 70_000n });
    // Alice: card 1's escrow, and card 5 in full (still in its cooling-off period)
    expect(h.balanceOf(ALICE)).toBe(10_000_000n - 200_000n + 30_000n + 100_000n);
    expect(totalEcny(h)).toBe(total);
    expect((await h.query("checkInvariant")) as object).toMatchObject({ ok: true, balance: 70_000n });
  });
});

describe("reissue (补办) by the regulator", () => {
  it("moves a lost card's value to a new card for the same or a new holder; the old card is dead", async () => {
    const h = await withCards();
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    ok(await h.call("consume", [1, 25_000n], { caller: ALICE }));
    expect((await h.call("reissue", [1], reg)).error?.code).toBe("CARD_NOT_LOST");
    ok(await h.call("reportLost", [1], { caller: ALICE }));
    expect((await h.call("reissue", [1], m)).error?.code).toBe("NOT_REGULATOR");
    expect((await h.call("reissue", [1], { caller: ALICE })).error?.code).toBe("NOT_REGULATOR");
    expect((await h.call("reissue", [1, A.merchant], reg)).error?.code).toBe("NOT_CONSUMER");
    const before = await h.query("escrowSummary");
    const r = await h.call("reissue", [1, BOB], reg);
    expect(ok(r)).toMatchObject({
      id: 2,
      holder: BOB,
      status: "active",
      remaining: 75_000n,
      escrow: 75_000n,
    });
    expect(events(r, "CardReissued")).toEqual([{ card: 1, newCard: 2, holder: BOB, escrow: 75_000n }]);
    expect(await h.query("card", [1])).toMatchObject({ status: "reissued", reissuedTo: 2, escrow: 0n });
    expect(await h.query("escrowSummary")).toEqual(before);
    expect((await h.call("consume", [1, 1n], { caller: ALICE })).error?.code).toBe("CARD_REISSUED");
    expect((await h.call("cancelLoss", [1], { caller: ALICE })).error?.code).toBe("CARD_NOT_LOST");
    expect((await h.call("reissue", [1], reg)).error?.code).toBe("CARD_REISSUED");
    ok(await h.call("consume", [2, 75_000n], { caller: BOB }));
    expect(((await h.query("cardsOf", [ALICE])) as { status: string }[]).map((c) => c.status)).toEqual([
      "reissued",
    ]);
    expect((await h.query("checkInvariant")) as object).toMatchObject({ ok: true });
  });
});

describe("closing: notice, then no sales, then the rest refunded", () => {
  it("announce, serve out the notice period, close; the merchant winds down the refunds", async () => {
    const h = await withCards({ closureNoticeDays: 30, coolingOffDays: 0 });
    const t0 = h.time;
    ok(await h.call("buy", [1], { caller: ALICE, value: 100_000n }));
    ok(await h.call("buy", [2], { caller: BOB, value: 30_000n }));
    ok(await h.call("buy", [1], { caller: CAROL, value: 100_000n }));
    h.advance(10 * DAY);
    expect((await h.call("announceClosure", ["lease ends"], { caller: ALICE })).error?.code).toBe(
      "NOT_MERCHANT",
    );
    const a = await h.call("announceClosure", ["lease ends"], m);
    expect(ok(a)).toEqual({ closesAt: t0 + 40 * DAY });
    expect((await h.call("announceClosure", ["again"], m)).error?.code).toBe("ALREADY_CLOSING");
    expect(await h.query("programme")).toMatchObject({ status: "closing" });
    expect((await h.call("buy", [1], { caller: DAVE, value: 100_000n })).error?.code).toBe(
      "PROGRAMME_CLOSING",
    );
    expect(
      (await h.call("addProduct", [{ name: "x", kind: "count", uses: 1, price: 1n }], m)).error?.code,
    ).toBe("PROGRAMME_CLOSING");
    // service goes on during the notice period; a holder may leave with the unconsumed part
    ok(await h.call("consume", [1, 30_000n], { caller: ALICE }));
    expect(ok(await h.call("refund", [3], { caller: CAROL }))).toMatchObject({
      amount: 100_000n,
      reason: "programme-closing",
    });
    expect((await h.call("forceRefund", [], m)).error?.code).toBe("PROGRAMME_NOT_CLOSED");
    h.advance(40 * DAY);
    expect(await h.query("programme")).toMatchObject({ status: "closed" });
    expect((await h.call("consume", [1, 1n], { caller: ALICE })).error?.code).toBe("PROGRAMME_CLOSED");
    expect((await h.call("buy", [1], { caller: DAVE, value: 100_000n })).error?.code).toBe(
      "PROGRAMME_CLOSED",
    );
    // the monthly card accrued until the closing date only (30 of its 30 days: all of it)
    expect(await h.query("card", [2])).toMatchObject({ status: "finished", consumed: 30_000n });
    expect(ok(await h.call("forceRefund", [], m))).toMatchObject({
      refunded: 1,
      amount: 70_000n,
      done: true,
    });
    expect(ok(await h.call("claim", [], m)).amount).toBe(60_000n);
    expect(await h.query("escrowSummary")).toMatchObject({
      balance: 0n,
      escrowed: 0n,
      due: 0n,
      liveCards: 0,
    });
    expect(await h.query("fulfilment")).toEqual({
      sold: 230_000n,
      consumed: 60_000n,
      refunded: 170_000n,
      consumedBps: 2608,
      refundRateBps: 7391,
      cards: 3,
      refundedCards: 2,
      cardRefundRateBps: 6666,
      liveCards: 0,
    });
  });

  it("a period card's accrual stops at the closing date; the rest goes back", async () => {
    const h = await withCards({ closureNoticeDays: 5, coolingOffDays: 0 });
    ok(await h.call("buy", [2], { caller: BOB, value: 30_000n }));
    h.advance(10 * DAY);
    ok(await h.call("announceClosure", ["moving"], m));
    h.advance(60 * DAY);
    expect(await h.query("card", [1])).toMatchObject({ consumed: 15_000n, escrow: 15_000n, expiresAt: null });
    expect(ok(await h.call("refund", [1], { caller: BOB }))).toMatchObject({
      amount: 15_000n,
      reason: "programme-closed",
    });
    // a regulator's freeze after the closing date does not move anything
    ok(await h.call("freeze", ["after"], reg));
    expect(ok(await h.call("forceRefund", [], reg))).toMatchObject({ refunded: 0, done: true });
  });
});
