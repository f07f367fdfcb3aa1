import { encode } from "@custos/codec";
import { describe, expect, it } from "vitest";
import { auditEvents, buildTrace, CardBook, openValue } from "../../src/index.js";

const P = `0x${"1".repeat(40)}`;
const H1 = `0x${"a".repeat(40)}`;
const H2 = `0x${"b".repeat(40)}`;
const M = `0x${"c".repeat(40)}`;
const ctx = (height: number, tx = 0) => ({
  height,
  tx,
  time: 1_000 * height,
  txHash: `0x${"0".repeat(63)}${height % 10}`,
  sender: H1,
});
const ev = (emitter: string, name: string, data: unknown, topics: string[] = []) => ({
  emitter,
  name,
  data: encode(data),
  topics,
});

describe("audit events: what each event did, read with its transaction", () => {
  it("a payment into a programme that sold a card is that card's purchase", () => {
    const [pay, sold] = auditEvents(ctx(1), [
      ev("ecny", "Transfer", [H1, P, 500n], [H1, P]),
      ev(P, "CardSold", { card: 7, product: 2, holder: H1, paid: 500n, escrowed: 500n }, ["card:7", H1]),
    ]);
    expect(pay?.movement).toMatchObject({
      kind: "purchase",
      amount: 500n,
      from: H1,
      to: P,
      ecny: true,
      card: 7,
    });
    expect(sold?.movement).toMatchObject({
      kind: "purchase",
      amount: 500n,
      ecny: false,
      card: 7,
      product: 2,
    });
    expect(sold?.subjects).toEqual([P, "card:7", H1]);
  });

  it("a forced-refund batch pairs the k-th payment with the k-th refund; a claim pays the merchant", () => {
    const evs = auditEvents(ctx(2), [
      ev("ecny", "Transfer", [P, H1, 300n], [P, H1]),
      ev("ecny", "Transfer", [P, H2, 200n], [P, H2]),
      ev(P, "CardRefunded", { card: 1, holder: H1, amount: 300n, fee: 0n, reason: "forced" }, ["card:1", H1]),
      ev(P, "CardRefunded", { card: 2, holder: H2, amount: 200n, fee: 0n, reason: "forced" }, ["card:2", H2]),
      ev(P, "CardsRefunded", { cards: [], amount: 500n }),
    ]);
    expect(evs.map((e) => [e.movement.kind, e.movement.card ?? null])).toEqual([
      ["forced-refund", 1],
      ["forced-refund", 2],
      ["forced-refund", 1],
      ["forced-refund", 2],
      ["other", null],
    ]);
    const claim = auditEvents(ctx(3), [
      ev("ecny", "Transfer", [P, M, 900n], [P, M]),
      ev(P, "MerchantPaid", { merchant: M, amount: 900n, claimed: 900n }, [M]),
    ]);
    expect(claim.map((e) => e.movement.kind)).toEqual(["claim", "claim"]);
  });

  it("a plain transfer stays a transfer; a payload of the wrong shape is read as other", () => {
    const [t] = auditEvents(ctx(4), [ev("ecny", "Transfer", [H1, H2, 5n], [H1, H2])]);
    expect(t?.movement.kind).toBe("transfer");
    const [bad] = auditEvents(ctx(5), [ev(P, "CardSold", { card: "x", paid: -1 })]);
    expect(bad?.movement.kind).toBe("other");
    const [garbage] = auditEvents(ctx(6), [
      { emitter: "ecny", name: "Issued", data: Uint8Array.of(0xc1), topics: [] },
    ]);
    expect(garbage?.movement.kind).toBe("other");
  });
});

describe("cards from their events", () => {
  it("a use's consumed value is the difference to the card's previous one; a reissued card carries on", () => {
    const events = [
      ...auditEvents(ctx(1), [
        ev(P, "CardSold", { card: 1, product: 1, holder: H1, paid: 1000n }, ["card:1", H1]),
      ]),
      ...auditEvents(ctx(2), [
        ev(P, "CardConsumed", { card: 1, holder: H1, consumed: 300n, released: 300n }, ["card:1", H1]),
      ]),
      ...auditEvents(ctx(3), [
        ev(P, "CardConsumed", { card: 1, holder: H1, consumed: 450n, released: 150n }, ["card:1", H1]),
      ]),
      ...auditEvents(ctx(4), [
        ev(P, "CardReissued", { card: 1, newCard: 2, holder: H2, escrow: 550n }, ["card:1", "card:2", H2]),
      ]),
      ...auditEvents(ctx(5), [
        ev(P, "CardConsumed", { card: 2, holder: H2, consumed: 500n, released: 50n }, ["card:2", H2]),
      ]),
      ...auditEvents(ctx(6), [
        ev(P, "CardRefunded", { card: 2, holder: H2, amount: 450n, fee: 50n, reason: "on-request" }, [
          "card:2",
          H2,
        ]),
      ]),
    ];
    const book = CardBook.replay(P, events);
    expect(book.stepOf(events[2] as never, 1)?.consumedDelta).toBe(150n);
    expect(book.stepOf(events[4] as never, 2)?.consumedDelta).toBe(50n);
    expect(openValue(book.cards.get(1) as never)).toBe(0n);
    expect(book.cards.get(2)).toMatchObject({
      paid: 1000n,
      consumed: 500n,
      refunded: 450n,
      fees: 50n,
      status: "refunded",
      reissuedFrom: 1,
    });
    const trace = buildTrace({
      target: { programme: P, card: 2 },
      height: 6,
      range: { from: null, to: null },
      events: events.slice(3),
      predecessors: events.slice(0, 4),
    });
    expect(trace.rows.map((r) => [r.kind, r.delta, r.balance])).toEqual([
      ["reissue", 550n, 550n],
      ["consumption", -50n, 500n],
      ["refund", -500n, 0n],
    ]);
  });

  it("an e-CNY trace runs backwards from the balance at its height: opening and closing of a range", () => {
    const events = [
      ...auditEvents(ctx(1), [ev("ecny", "Issued", [H1, 1000n, "rc"], [H1])]),
      ...auditEvents(ctx(2), [ev("ecny", "Transfer", [H1, H2, 100n], [H1, H2])]),
      ...auditEvents(ctx(3), [ev("ecny", "Transfer", [H2, H1, 30n], [H2, H1])]),
    ];
    const t = buildTrace({
      target: { account: H1 },
      height: 3,
      range: { from: 2000, to: 2999 },
      events: events.slice(1),
      balanceAtHeight: 930n,
    });
    expect([t.opening, t.closing, t.atHeight]).toEqual([1000n, 900n, 930n]);
    expect(t.rows.map((r) => [r.kind, r.delta, r.balance, r.counterparty])).toEqual([
      ["transfer", -100n, 900n, H2],
    ]);
    expect(t.totals).toEqual([{ kind: "transfer", count: 1, in: 0n, out: 100n }]);
  });
});
