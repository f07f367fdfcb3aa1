import { ADDRESS_RE } from "@custos/types";
import { CardBook, openValue } from "./cards.js";
import { auditError } from "./errors.js";
import { type AuditEvent, comparePosition, type MovementKind } from "./events.js";
import { inRange, type TimeRange } from "./time.js";
import { toJson } from "./values.js";

/**
 * What a trace follows: an account's e-CNY wallet (a member, or any contract's balance), one card
 * of a programme, or a programme (its escrow account and everything it recorded).
 */
export type TraceTarget = { account: string } | { programme: string; card: number } | { programme: string };

export function checkTarget(t: unknown): TraceTarget {
  const o = (t ?? {}) as Record<string, unknown>;
  const bad = (why: string) => auditError("AUDIT_INVALID_QUERY", why);
  if (o.account !== undefined) {
    if (typeof o.account !== "string" || !ADDRESS_RE.test(o.account))
      throw bad("account must be an address (0x + 40 lowercase hex)");
    if (o.programme !== undefined || o.card !== undefined)
      throw bad("give an account, or a programme (and a card)");
    return { account: o.account };
  }
  if (typeof o.programme !== "string" || !ADDRESS_RE.test(o.programme))
    throw bad("trace an account, a programme (0x address), or a card of a programme (card id and programme)");
  if (o.card === undefined || o.card === null) return { programme: o.programme };
  if (typeof o.card !== "number" || !Number.isSafeInteger(o.card) || o.card < 1)
    throw bad("card must be a card id (an integer >= 1)");
  return { programme: o.programme, card: o.card };
}

/** The audit chain a trace walks: the account's or programme's address, or `card:<id>`. */
export function traceSubject(t: TraceTarget): string {
  if ("account" in t) return t.account;
  if ("card" in t) return `card:${t.card}`;
  return t.programme;
}

/** What a trace's running balance is: an e-CNY balance, or a card's open value. */
export function balanceKind(t: TraceTarget): "ecny" | "card" {
  return "card" in t ? "card" : "ecny";
}

export interface TraceRow {
  height: number;
  tx: number;
  index: number;
  time: number;
  txHash: string;
  sender: string;
  emitter: string;
  name: string;
  kind: MovementKind;
  /** The event's amount (fen). */
  amount: bigint;
  /** Its effect on the running balance (signed). */
  delta: bigint;
  balance: bigint;
  counterparty: string | null;
  programme: string | null;
  card: number | null;
  note: string;
}

export interface Trace {
  target: TraceTarget;
  subject: string;
  balance: "ecny" | "card";
  /** The chain height the trace is complete up to. */
  height: number;
  from: number | null;
  to: number | null;
  /** Balance before the first event of the range, and after its last. */
  opening: bigint;
  closing: bigint;
  /** The balance at `height` (for e-CNY: what the state holds). */
  atHeight: bigint;
  rows: TraceRow[];
  /** Sums over the range's rows by kind: money in (delta > 0), out (delta < 0). */
  totals: { kind: MovementKind; count: number; in: bigint; out: bigint }[];
}

export interface TraceInput {
  target: TraceTarget;
  height: number;
  range: TimeRange;
  /**
   * Every event of the subject's chain from the first one at or after `range.from` (from the
   * chain's start for a card, or without a `from`) up to `height`, in chain order.
   */
  events: readonly AuditEvent[];
  /** For e-CNY traces: the account's balance at `height` (the state's). */
  balanceAtHeight?: bigint;
  /** For a card that was reissued from another: its predecessors' card events (chain order). */
  predecessors?: readonly AuditEvent[];
}

function note(e: AuditEvent): string {
  const m = e.movement;
  switch (m.kind) {
    case "issue":
      return m.rechargeId ? `recharge ${m.rechargeId}` : "issued";
    case "purchase":
      return e.name === "CardSold"
        ? `card ${m.card} bought${m.product !== undefined ? ` (product ${m.product})` : ""}`
        : `paid for card ${m.card}`;
    case "consumption":
      return `card ${m.card} used, released ${m.released ?? 0n} fen`;
    case "refund":
    case "forced-refund":
      return e.name === "CardRefunded"
        ? `card ${m.card} refunded (${m.reason}${m.fee ? `, fee ${m.fee} fen` : ""})`
        : `refund of card ${m.card}`;
    case "card-transfer":
      return `card ${m.card} ${m.from} -> ${m.to}`;
    case "reissue":
      return `card ${m.card} reissued as card ${m.newCard}`;
    case "release":
      return `settled, released ${m.released ?? 0n} fen`;
    case "claim":
      return e.name === "MerchantPaid" ? "merchant paid" : "paid to the merchant";
    default:
      return e.name;
  }
}

function ecnyDelta(e: AuditEvent, account: string): bigint {
  const m = e.movement;
  if (!m.ecny) return 0n;
  let d = 0n;
  if (m.to === account) d += m.amount;
  if (m.from === account) d -= m.amount;
  return d;
}

function counterparty(e: AuditEvent, self: string): string | null {
  const m = e.movement;
  if (m.from === self) return m.to ?? null;
  if (m.to === self) return m.from ?? null;
  if (m.programme && m.programme !== self) return m.programme;
  return m.holder && m.holder !== self ? m.holder : null;
}

/**
 * Every movement of the target's funds in chain order, with running balances. An e-CNY balance
 * runs backwards from the state's balance at `height` over every event up to it, so the figures
 * end exactly at the chain's balance; a card's open value runs forwards from its purchase (its
 * chain from the start). Rows are those of the range; the balance before them is `opening`.
 */
export function buildTrace(input: TraceInput): Trace {
  const { target, range } = input;
  const subject = traceSubject(target);
  const kind = balanceKind(target);
  const events = [...input.events].sort(comparePosition);
  const rows: TraceRow[] = [];
  let opening = 0n;
  let atHeight = 0n;
  if (kind === "ecny") {
    const account = "account" in target ? target.account : target.programme;
    if (input.balanceAtHeight === undefined)
      throw auditError("AUDIT_INVALID_QUERY", "an e-CNY trace needs the balance at its height");
    atHeight = input.balanceAtHeight;
    let balance = atHeight;
    for (const e of events) balance -= ecnyDelta(e, account);
    let before = balance;
    for (const e of events) {
      const delta = ecnyDelta(e, account);
      balance += delta;
      if (range.from !== null && e.time < range.from) {
        before = balance;
        continue;
      }
      if (!inRange(e.time, range)) continue;
      if (rows.length === 0) opening = before;
      rows.push(row(e, delta, balance, account));
    }
    if (rows.length === 0) opening = before;
  } else {
    const { programme, card } = target as { programme: string; card: number };
    const book = CardBook.replay(programme, [...(input.predecessors ?? []), ...events]);
    let balance = 0n;
    let before = 0n;
    for (const e of events) {
      if (e.emitter !== programme) continue;
      const s = book.stepOf(e, card);
      const delta = s?.valueDelta ?? 0n;
      balance = s?.valueAfter ?? balance;
      if (range.from !== null && e.time < range.from) {
        before = balance;
        continue;
      }
      if (!inRange(e.time, range)) continue;
      if (rows.length === 0) opening = before;
      const r = row(e, delta, balance, programme);
      if (e.movement.kind === "consumption") r.amount = s?.consumedDelta ?? 0n;
      if (e.movement.kind === "card-transfer" || e.movement.kind === "reissue")
        r.amount = delta < 0n ? -delta : delta;
      rows.push(r);
    }
    const rec = book.cards.get(card);
    atHeight = rec ? openValue(rec) : 0n;
    if (rows.length === 0) opening = before;
  }
  const closing = rows.length ? (rows[rows.length - 1] as TraceRow).balance : opening;
  const totals = new Map<MovementKind, { kind: MovementKind; count: number; in: bigint; out: bigint }>();
  for (const r of rows) {
    const t = totals.get(r.kind) ?? { kind: r.kind, count: 0, in: 0n, out: 0n };
    t.count++;
    if (r.delta > 0n) t.in += r.delta;
    else t.out -= r.delta;
    totals.set(r.kind, t);
  }
  return {
    target,
    subject,
    balance: kind,
    height: input.height,
    from: range.from,
    to: range.to,
    opening,
    closing,
    atHeight,
    rows,
    totals: [...totals.values()],
  };
}

function row(e: AuditEvent, delta: bigint, balance: bigint, self: string): TraceRow {
  const m = e.movement;
  return {
    height: e.height,
    tx: e.tx,
    index: e.index,
    time: e.time,
    txHash: e.txHash,
    sender: e.sender,
    emitter: e.emitter,
    name: e.name,
    kind: m.kind,
    amount: m.amount,
    delta,
    balance,
    counterparty: counterparty(e, self),
    programme: m.programme ?? null,
    card: m.card ?? null,
    note: note(e),
  };
}

/** A trace as JSON (amounts as decimal strings of fen). */
export function traceJson(t: Trace): Record<string, unknown> {
  return toJson(t) as Record<string, unknown>;
}
