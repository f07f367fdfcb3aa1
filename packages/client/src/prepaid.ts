/**
 * A typed client for the prepaid-card programme template (contracts/prepaid-card, 预付资金监管),
 * for programs that embed it: a merchant's till (sell, record a use, claim), a consumer's wallet
 * (buy, use, transfer, refund, report a loss), an institution's onboarding desk (open a
 * programme), the regulator's console (freeze, forced refunds, the escrow invariant). The
 * `custos prepaid` commands are built on it.
 *
 * Money is bigint fen everywhere; times are ms since the epoch (block time); shares are basis
 * points. The template's views come over JSON-RPC with bigints as decimal strings: every answer
 * is checked and converted here, and an answer of another shape is a BAD_RESPONSE, not a guess.
 *
 * A transaction that the programme refuses fails with a PrepaidTxError whose `code` is the
 * template's stable revert code (NOT_HOLDER, CARD_LOST, PROGRAMME_FROZEN, ...) or the chain's
 * (ECNY_INSUFFICIENT_BALANCE, CONTRACT_FROZEN, ...), with the committed receipt attached: the
 * chain keeps the receipt of a refused call, and nothing the call did stays.
 */
import { encode } from "@custos/codec";
import { CustosError } from "@custos/utils";
import type { CustosClient, ReceiptView } from "./client.js";
import type { Call, Wallet } from "./wallet.js";

/** The template's name in the on-chain registry. */
export const PREPAID_TEMPLATE = "prepaid-card";

export type CardKind = "stored" | "count" | "period";
export type CardStatus = "active" | "lost" | "expired" | "refunded" | "finished" | "reissued";
export type ProgrammeStatus = "active" | "frozen" | "closing" | "closed";
export type Period = "week" | "month" | "quarter" | "year";
export type IssuerClass = "group" | "brand" | "scale" | "other";
export type RefundReason =
  | "cooling-off"
  | "programme-frozen"
  | "programme-closing"
  | "programme-closed"
  | "card-expired"
  | "on-request";

export const CARD_KINDS: readonly CardKind[] = ["stored", "count", "period"];
export const PERIODS: readonly Period[] = ["week", "month", "quarter", "year"];
export const ISSUER_CLASSES: readonly IssuerClass[] = ["group", "brand", "scale", "other"];

/** The rules of a programme, checked by the template when an institution opens it (README: Parameters). */
export interface ProgrammeParams {
  /** The merchant who sells and is paid: a member with the merchant role. */
  merchant: string;
  name: string;
  issuerClass?: IssuerClass;
  escrowFloorBps?: number;
  escrowShareBps?: number;
  cardCap?: bigint;
  maxTermDays?: number;
  coolingOffDays?: number;
  closureNoticeDays?: number;
  refund?: { afterCoolingOff?: boolean; feeBps?: number };
  reminders?: { lowBalance?: bigint; usesLeft?: number; expiryDays?: number };
  risk?: { cardUsesPerDay?: number; programmeUsesPerHour?: number };
}

/** A product as the merchant adds it (README: Business rules, Products). */
export type ProductSpec =
  | { kind: "stored"; name: string; faceValue: bigint; price?: bigint; validDays?: number }
  | { kind: "stored"; name: string; open: true; minAmount?: bigint; maxAmount?: bigint; validDays?: number }
  | { kind: "count"; name: string; uses: number; price: bigint; validDays?: number }
  | { kind: "period"; name: string; period: Period; periods?: number; price: bigint; usesPerDay?: number };

export interface PrepaidProduct {
  id: number;
  name: string;
  kind: CardKind;
  /** List price; 0 for an open-amount product. */
  price: bigint;
  /** Stored value a card carries; 0 for open amounts (the amount paid). */
  faceValue: bigint;
  open: boolean;
  minAmount: bigint;
  maxAmount: bigint;
  uses: number;
  period: Period | null;
  periods: number;
  /** 0: no daily limit. */
  usesPerDay: number;
  termDays: number;
  retired: boolean;
  addedAt: number;
}

export interface PrepaidCard {
  id: number;
  product: number;
  kind: CardKind;
  holder: string;
  status: CardStatus;
  coolingOff: boolean;
  coolingOffUntil: number | null;
  paid: bigint;
  escrow: bigint;
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  /** Stored value left (fen), uses left (count), or ms of term left (period). */
  remaining: bigint;
  /** Face value (fen), uses, or ms of term. */
  units: bigint;
  priceId: number;
  /** How the price was chosen: list, open, consumer:0x.., category:NAME. */
  basis: string;
  transferable: boolean;
  purchasedAt: number;
  /** When the term ends if it runs on unpaused; null while it is paused (or over). */
  expiresAt: number | null;
  reissuedFrom: number | null;
  reissuedTo: number | null;
}

export interface ProgrammeInfo {
  address: string;
  name: string;
  merchant: string;
  institution: string;
  issuerClass: IssuerClass;
  escrowFloorBps: number;
  escrowShareBps: number;
  cardCap: bigint;
  maxTermDays: number;
  coolingOffDays: number;
  closureNoticeDays: number;
  refund: { afterCoolingOff: boolean; feeBps: number };
  reminders: { lowBalance: bigint; usesLeft: number; expiryDays: number };
  risk: { cardUsesPerDay: number; programmeUsesPerHour: number };
  createdAt: number;
  createdHeight: number;
  status: ProgrammeStatus;
  frozenReason: string | null;
  frozenAt: number | null;
  pausedMs: number;
  closing: { at: number; closesAt: number; reason: string } | null;
  /** Products added so far (retired ones included). */
  products: number;
}

export interface EscrowSummary {
  /** The programme's e-CNY balance. */
  balance: bigint;
  sold: bigint;
  escrowed: bigint;
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  claimed: bigint;
  /** Released to the merchant and not claimed yet. */
  due: bigint;
  cards: number;
  liveCards: number;
  refundedCards: number;
}

export interface Fulfilment {
  sold: bigint;
  consumed: bigint;
  refunded: bigint;
  consumedBps: number;
  refundRateBps: number;
  cards: number;
  refundedCards: number;
  cardRefundRateBps: number;
  liveCards: number;
}

/** What `buy` charges a consumer now. Open-amount products: price null, the amount is chosen. */
export interface Quote {
  price: bigint | null;
  priceId: number;
  basis: string;
  transferable: boolean;
  minAmount: bigint | null;
  maxAmount: bigint | null;
}

export interface RefundResult {
  card: number;
  amount: bigint;
  fee: bigint;
  reason: RefundReason;
}

export interface ForcedRefundBatch {
  refunded: number;
  amount: bigint;
  /** Lost cards left out (reissue them first: their holder's key may be what was lost). */
  skipped: number[];
  /** The last card this batch reached: the next batch starts after it; null when done. */
  next: number | null;
  done: boolean;
}

export interface ClaimResult {
  amount: bigint;
  claimed: bigint;
}

export interface SettleResult {
  cooled: number;
  accrued: number;
  released: bigint;
}

/** One page of the template's own invariant query. */
export interface InvariantPage {
  ok: boolean;
  problems: string[];
  balance: bigint;
  escrowed: bigint;
  due: bigint;
  surplus: bigint;
  sold: bigint;
  released: bigint;
  refunded: bigint;
  consumed: bigint;
  page: { cards: number; escrow: bigint; next: number | null };
}

/**
 * The escrow invariant checked from the chain at one height: the programme's e-CNY balance (read
 * from the e-CNY ledger itself) equals the escrow of its live cards plus what is due to the
 * merchant, the escrow of every card adds up to the programme's total, and the template's own
 * `checkInvariant` finds nothing wrong on any page of cards.
 */
export interface InvariantReport {
  ok: boolean;
  address: string;
  height: number;
  /** The programme's balance in the e-CNY ledger (ecny_balance). */
  balance: bigint;
  escrowed: bigint;
  due: bigint;
  /** balance - escrowed - due: e-CNY the programme cannot account for (or is short of, if negative). */
  surplus: bigint;
  /** Σ escrow over every card, page by page. */
  cardEscrow: bigint;
  cards: number;
  pages: number;
  /** What the template's own checkInvariant said, over every page. */
  contractOk: boolean;
  problems: string[];
}

/** A programme as the template registry lists it. */
export interface ProgrammeListing {
  address: string;
  name: string;
  merchant: string;
  /** The institution that opened it. */
  institution: string;
  createdHeight: number;
  createdTime: number;
  /** Governance's own freeze of the instance (calls fail with CONTRACT_FROZEN), apart from the regulator's programme freeze. */
  instanceStatus: "active" | "frozen";
  codeHash: string;
}

export interface PrepaidEvent {
  name: string;
  data: Record<string, unknown>;
}

/** A committed transaction of the programme that succeeded, with its decoded result. */
export interface PrepaidReceipt<T> {
  hash: string;
  blockHeight: number;
  gasUsed: bigint;
  output: T;
  /** The programme's events (CardSold, LowBalance, RiskFlagged, ...), data as JSON. */
  events: PrepaidEvent[];
  receipt: ReceiptView;
}

export interface SendOptions {
  /** How long to wait for the receipt (default 60 s). */
  timeoutMs?: number;
}

/** A transaction the programme (or the chain) refused; `code` is the stable revert code. */
export class PrepaidTxError extends CustosError {
  constructor(
    code: string,
    message: string,
    readonly hash: string,
    readonly blockHeight: number | undefined,
    readonly receipt: ReceiptView,
    meta: Record<string, unknown> = {},
  ) {
    super(code, message, { hash, blockHeight, ...meta });
    this.name = "PrepaidTxError";
  }
}

/** One programme transaction, built but not signed: `send` it with a wallet. */
export interface PrepaidCall<T> extends Call {
  decode: (output: unknown) => T;
  /** Whose events the receipt's result carries (default `to`; instantiation: the new programme). */
  emitterOf?: (output: T) => string;
}

// ---------------------------------------------------------------------------------------------
// Checked conversion of the template's JSON views
// ---------------------------------------------------------------------------------------------

function bad(what: string): never {
  throw new CustosError("BAD_RESPONSE", `unexpected answer from the prepaid-card programme: ${what}`);
}

type Json = Record<string, unknown>;

function obj(v: unknown, what: string): Json {
  if (typeof v !== "object" || v === null || Array.isArray(v)) bad(`${what} is not an object`);
  return v as Json;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) bad(`${what} is not a list`);
  return v;
}

function fenOf(v: unknown, what: string): bigint {
  if (typeof v === "string" && /^-?[0-9]{1,30}$/.test(v)) return BigInt(v);
  if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
  if (typeof v === "bigint") return v;
  return bad(`${what} is not a whole amount`);
}

function intOf(v: unknown, what: string): number {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  if (typeof v === "string" && /^-?[0-9]{1,15}$/.test(v)) return Number(v);
  return bad(`${what} is not an integer`);
}

const orNull = <T>(v: unknown, f: (v: unknown) => T): T | null =>
  v === null || v === undefined ? null : f(v);

function strOf(v: unknown, what: string): string {
  if (typeof v !== "string") bad(`${what} is not text`);
  return v;
}

function boolOf(v: unknown, what: string): boolean {
  if (typeof v !== "boolean") bad(`${what} is not true or false`);
  return v;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], what: string): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) bad(`${what} is ${String(v)}`);
  return v as T;
}

const STATUSES: readonly CardStatus[] = ["active", "lost", "expired", "refunded", "finished", "reissued"];
const PROGRAMME_STATUSES: readonly ProgrammeStatus[] = ["active", "frozen", "closing", "closed"];
const REASONS: readonly RefundReason[] = [
  "cooling-off",
  "programme-frozen",
  "programme-closing",
  "programme-closed",
  "card-expired",
  "on-request",
];

export function toProduct(v: unknown): PrepaidProduct {
  const p = obj(v, "product");
  return {
    id: intOf(p.id, "product.id"),
    name: strOf(p.name, "product.name"),
    kind: oneOf(p.kind, CARD_KINDS, "product.kind"),
    price: fenOf(p.price, "product.price"),
    faceValue: fenOf(p.faceValue, "product.faceValue"),
    open: boolOf(p.open, "product.open"),
    minAmount: fenOf(p.minAmount, "product.minAmount"),
    maxAmount: fenOf(p.maxAmount, "product.maxAmount"),
    uses: intOf(p.uses, "product.uses"),
    period: orNull(p.period, (x) => oneOf(x, PERIODS, "product.period")),
    periods: intOf(p.periods, "product.periods"),
    usesPerDay: intOf(p.usesPerDay, "product.usesPerDay"),
    termDays: intOf(p.termDays, "product.termDays"),
    retired: boolOf(p.retired, "product.retired"),
    addedAt: intOf(p.addedAt, "product.addedAt"),
  };
}

export function toCard(v: unknown): PrepaidCard {
  const c = obj(v, "card");
  return {
    id: intOf(c.id, "card.id"),
    product: intOf(c.product, "card.product"),
    kind: oneOf(c.kind, CARD_KINDS, "card.kind"),
    holder: strOf(c.holder, "card.holder"),
    status: oneOf(c.status, STATUSES, "card.status"),
    coolingOff: boolOf(c.coolingOff, "card.coolingOff"),
    coolingOffUntil: orNull(c.coolingOffUntil, (x) => intOf(x, "card.coolingOffUntil")),
    paid: fenOf(c.paid, "card.paid"),
    escrow: fenOf(c.escrow, "card.escrow"),
    consumed: fenOf(c.consumed, "card.consumed"),
    released: fenOf(c.released, "card.released"),
    refunded: fenOf(c.refunded, "card.refunded"),
    remaining: fenOf(c.remaining, "card.remaining"),
    units: fenOf(c.units, "card.units"),
    priceId: intOf(c.priceId, "card.priceId"),
    basis: strOf(c.basis, "card.basis"),
    transferable: boolOf(c.transferable, "card.transferable"),
    purchasedAt: intOf(c.purchasedAt, "card.purchasedAt"),
    expiresAt: orNull(c.expiresAt, (x) => intOf(x, "card.expiresAt")),
    reissuedFrom: orNull(c.reissuedFrom, (x) => intOf(x, "card.reissuedFrom")),
    reissuedTo: orNull(c.reissuedTo, (x) => intOf(x, "card.reissuedTo")),
  };
}

export function toProgrammeInfo(address: string, v: unknown): ProgrammeInfo {
  const p = obj(v, "programme");
  const refund = obj(p.refund, "programme.refund");
  const reminders = obj(p.reminders, "programme.reminders");
  const risk = obj(p.risk, "programme.risk");
  const closing = orNull(p.closing, (x) => {
    const c = obj(x, "programme.closing");
    return {
      at: intOf(c.at, "closing.at"),
      closesAt: intOf(c.closesAt, "closing.closesAt"),
      reason: strOf(c.reason, "closing.reason"),
    };
  });
  return {
    address,
    name: strOf(p.name, "programme.name"),
    merchant: strOf(p.merchant, "programme.merchant"),
    institution: strOf(p.institution, "programme.institution"),
    issuerClass: oneOf(p.issuerClass, ISSUER_CLASSES, "programme.issuerClass"),
    escrowFloorBps: intOf(p.escrowFloorBps, "programme.escrowFloorBps"),
    escrowShareBps: intOf(p.escrowShareBps, "programme.escrowShareBps"),
    cardCap: fenOf(p.cardCap, "programme.cardCap"),
    maxTermDays: intOf(p.maxTermDays, "programme.maxTermDays"),
    coolingOffDays: intOf(p.coolingOffDays, "programme.coolingOffDays"),
    closureNoticeDays: intOf(p.closureNoticeDays, "programme.closureNoticeDays"),
    refund: {
      afterCoolingOff: boolOf(refund.afterCoolingOff, "refund.afterCoolingOff"),
      feeBps: intOf(refund.feeBps, "refund.feeBps"),
    },
    reminders: {
      lowBalance: fenOf(reminders.lowBalance, "reminders.lowBalance"),
      usesLeft: intOf(reminders.usesLeft, "reminders.usesLeft"),
      expiryDays: intOf(reminders.expiryDays, "reminders.expiryDays"),
    },
    risk: {
      cardUsesPerDay: intOf(risk.cardUsesPerDay, "risk.cardUsesPerDay"),
      programmeUsesPerHour: intOf(risk.programmeUsesPerHour, "risk.programmeUsesPerHour"),
    },
    createdAt: intOf(p.createdAt, "programme.createdAt"),
    createdHeight: intOf(p.createdHeight, "programme.createdHeight"),
    status: oneOf(p.status, PROGRAMME_STATUSES, "programme.status"),
    frozenReason: orNull(p.frozenReason, (x) => strOf(x, "programme.frozenReason")),
    frozenAt: orNull(p.frozenAt, (x) => intOf(x, "programme.frozenAt")),
    pausedMs: intOf(p.pausedMs, "programme.pausedMs"),
    closing,
    products: intOf(p.products, "programme.products"),
  };
}

export function toEscrowSummary(v: unknown): EscrowSummary {
  const s = obj(v, "escrowSummary");
  return {
    balance: fenOf(s.balance, "balance"),
    sold: fenOf(s.sold, "sold"),
    escrowed: fenOf(s.escrowed, "escrowed"),
    consumed: fenOf(s.consumed, "consumed"),
    released: fenOf(s.released, "released"),
    refunded: fenOf(s.refunded, "refunded"),
    claimed: fenOf(s.claimed, "claimed"),
    due: fenOf(s.due, "due"),
    cards: intOf(s.cards, "cards"),
    liveCards: intOf(s.liveCards, "liveCards"),
    refundedCards: intOf(s.refundedCards, "refundedCards"),
  };
}

export function toFulfilment(v: unknown): Fulfilment {
  const f = obj(v, "fulfilment");
  return {
    sold: fenOf(f.sold, "sold"),
    consumed: fenOf(f.consumed, "consumed"),
    refunded: fenOf(f.refunded, "refunded"),
    consumedBps: intOf(f.consumedBps, "consumedBps"),
    refundRateBps: intOf(f.refundRateBps, "refundRateBps"),
    cards: intOf(f.cards, "cards"),
    refundedCards: intOf(f.refundedCards, "refundedCards"),
    cardRefundRateBps: intOf(f.cardRefundRateBps, "cardRefundRateBps"),
    liveCards: intOf(f.liveCards, "liveCards"),
  };
}

function toQuote(v: unknown): Quote {
  const q = obj(v, "quote");
  const open = q.price === null;
  return {
    price: open ? null : fenOf(q.price, "quote.price"),
    priceId: open ? 0 : intOf(q.priceId, "quote.priceId"),
    basis: strOf(q.basis, "quote.basis"),
    transferable: open ? true : boolOf(q.transferable, "quote.transferable"),
    minAmount: open ? fenOf(q.minAmount, "quote.minAmount") : null,
    maxAmount: open ? fenOf(q.maxAmount, "quote.maxAmount") : null,
  };
}

function toInvariantPage(v: unknown): InvariantPage {
  const r = obj(v, "checkInvariant");
  const page = obj(r.page, "checkInvariant.page");
  return {
    ok: boolOf(r.ok, "ok"),
    problems: list(r.problems, "problems").map((p) => strOf(p, "problem")),
    balance: fenOf(r.balance, "balance"),
    escrowed: fenOf(r.escrowed, "escrowed"),
    due: fenOf(r.due, "due"),
    surplus: fenOf(r.surplus, "surplus"),
    sold: fenOf(r.sold, "sold"),
    released: fenOf(r.released, "released"),
    refunded: fenOf(r.refunded, "refunded"),
    consumed: fenOf(r.consumed, "consumed"),
    page: {
      cards: intOf(page.cards, "page.cards"),
      escrow: fenOf(page.escrow, "page.escrow"),
      next: orNull(page.next, (x) => intOf(x, "page.next")),
    },
  };
}

function toRefund(v: unknown): RefundResult {
  const r = obj(v, "refund");
  return {
    card: intOf(r.card, "refund.card"),
    amount: fenOf(r.amount, "refund.amount"),
    fee: fenOf(r.fee, "refund.fee"),
    reason: oneOf(r.reason, REASONS, "refund.reason"),
  };
}

function toBatch(v: unknown): ForcedRefundBatch {
  const r = obj(v, "forceRefund");
  return {
    refunded: intOf(r.refunded, "refunded"),
    amount: fenOf(r.amount, "amount"),
    skipped: list(r.skipped, "skipped").map((x) => intOf(x, "skipped card")),
    next: orNull(r.next, (x) => intOf(x, "next")),
    done: boolOf(r.done, "done"),
  };
}

const nothing = (): null => null;

/** bigints as {"$n": "..."}, the VM's JSON for them (programme parameters travel as JSON text). */
function paramsJson(p: ProgrammeParams): string {
  return JSON.stringify(p, (_k, v) => (typeof v === "bigint" ? { $n: v.toString() } : v));
}

// ---------------------------------------------------------------------------------------------
// The programme
// ---------------------------------------------------------------------------------------------

/** The programmes of the prepaid-card template on the chain, newest first (at most 500). */
export async function listProgrammes(client: CustosClient): Promise<ProgrammeListing[]> {
  const raw = await client.call(
    "templates",
    "instances",
    encode([JSON.stringify({ template: PREPAID_TEMPLATE })]),
  );
  return list(raw, "instances").map((v) => {
    const i = obj(v, "instance");
    const params = obj(i.params, "instance.params");
    return {
      address: strOf(i.address, "instance.address"),
      name: strOf(params.name, "params.name"),
      merchant: strOf(params.merchant, "params.merchant"),
      institution: strOf(i.creator, "instance.creator"),
      createdHeight: intOf(i.createdHeight, "instance.createdHeight"),
      createdTime: intOf(i.createdTime, "instance.createdTime"),
      instanceStatus: oneOf(i.status, ["active", "frozen"] as const, "instance.status"),
      codeHash: strOf(i.codeHash, "instance.codeHash"),
    };
  });
}

/** The code hash of a template id: a code hash, NAME@VERSION, or the newest approved version of the template. */
export async function prepaidTemplateHash(client: CustosClient, id?: string): Promise<string> {
  if (id !== undefined && /^0x[0-9a-f]{64}$/.test(id)) return id;
  if (id !== undefined) {
    const t = obj(await client.call("templates", "get", encode([id])), "template");
    return strOf(t.codeHash, "template.codeHash");
  }
  const approved = list(
    await client.call(
      "templates",
      "list",
      encode([JSON.stringify({ name: PREPAID_TEMPLATE, status: "approved" })]),
    ),
    "templates",
  );
  const newest = approved[0];
  if (newest === undefined)
    throw new CustosError(
      "TEMPLATE_NOT_APPROVED",
      `no approved ${PREPAID_TEMPLATE} template on this chain: submit it (custos template submit) and have the committee approve it`,
    );
  return strOf(obj(newest, "template").codeHash, "template.codeHash");
}

/**
 * Sends a programme call signed by `wallet`, waits for its receipt and decodes its result;
 * throws a PrepaidTxError with the receipt's code when it failed.
 */
export async function sendPrepaid<T>(
  wallet: Wallet,
  call: PrepaidCall<T>,
  o: SendOptions = {},
): Promise<PrepaidReceipt<T>> {
  const { decode, emitterOf, ...tx } = call;
  const r = await wallet.send(tx, o.timeoutMs === undefined ? {} : { timeoutMs: o.timeoutMs });
  const receipt = r.receipt;
  if (!receipt) throw new CustosError("TX_NO_RECEIPT", `transaction ${r.hash} committed without a receipt`);
  const blockHeight = r.view?.blockHeight as number;
  if (!receipt.success)
    throw new PrepaidTxError(
      receipt.errorCode ?? "TX_FAILED",
      receipt.errorMessage ?? receipt.errorCode ?? "the transaction failed",
      r.hash,
      blockHeight,
      receipt,
    );
  const output = decode(receipt.output);
  const emitter = emitterOf ? emitterOf(output) : call.to;
  return {
    hash: r.hash,
    blockHeight,
    gasUsed: BigInt(receipt.gasUsed),
    output,
    events: receipt.events
      .filter((e) => e.emitter === emitter)
      .map((e) => ({ name: e.name, data: obj(e.data, `event ${e.name}`) })),
    receipt,
  };
}

/**
 * An institution opens a programme for an onboarded merchant: it instantiates the prepaid-card
 * template (the newest approved version, or `template`: a code hash or NAME@VERSION) with the
 * programme's rules, which the template checks (INVALID_PARAMS names the field).
 */
export async function openProgramme(
  institution: Wallet,
  params: ProgrammeParams,
  o: SendOptions & { template?: string } = {},
): Promise<PrepaidReceipt<PrepaidProgramme>> {
  const codeHash = await prepaidTemplateHash(institution.client, o.template);
  return sendPrepaid(
    institution,
    {
      to: "templates",
      method: "instantiate",
      args: [codeHash, paramsJson(params)],
      decode: (out) =>
        new PrepaidProgramme(institution.client, strOf(obj(out, "instantiate").address, "address")),
      emitterOf: (p) => p.address,
    },
    o,
  );
}

/**
 * One programme: its views, and its transactions either as unsigned calls (`calls`, for a
 * caller that signs and sends them itself) or signed by a wallet (`as(wallet)`).
 */
export class PrepaidProgramme {
  readonly calls: ProgrammeCalls;

  constructor(
    readonly client: CustosClient,
    readonly address: string,
  ) {
    this.calls = new ProgrammeCalls(address);
  }

  /** The transactions of one actor (a merchant's till, a consumer's wallet, the regulator). */
  as(wallet: Wallet): PrepaidActor {
    return new PrepaidActor(this, wallet);
  }

  private query(method: string, args: unknown[] = []): Promise<unknown> {
    return this.client.call(this.address, method, encode(args));
  }

  /** The programme's rules and status (active, frozen, closing, closed). */
  async info(): Promise<ProgrammeInfo> {
    return toProgrammeInfo(this.address, await this.query("programme"));
  }

  /** A card as of the latest block (accrual and cooling-off brought up to its time). */
  async card(cardId: number): Promise<PrepaidCard> {
    return toCard(await this.query("card", [cardId]));
  }

  /** Every card a holder has had in this programme (every status), by id. */
  async cardsOf(holder: string): Promise<PrepaidCard[]> {
    const out: PrepaidCard[] = [];
    for (let after = 0; ; ) {
      const page = list(await this.query("cardsOf", [holder, after, 50]), "cardsOf").map(toCard);
      out.push(...page);
      if (page.length < 50) return out;
      after = (page.at(-1) as PrepaidCard).id;
    }
  }

  async product(productId: number): Promise<PrepaidProduct> {
    return toProduct(await this.query("product", [productId]));
  }

  /** The products on sale (and the retired ones with `includeRetired`), by id. */
  async products(o: { includeRetired?: boolean } = {}): Promise<PrepaidProduct[]> {
    const out: PrepaidProduct[] = [];
    // retired products are asked for too and left out here: the template filters a page after
    // reading it, so a short page would not mean the last one
    for (let after = 0; ; ) {
      const page = list(await this.query("products", [after, 100, true]), "products").map(toProduct);
      out.push(...page.filter((p) => o.includeRetired || !p.retired));
      if (page.length < 100) return out;
      after = (page.at(-1) as PrepaidProduct).id;
    }
  }

  /** What `buy` would charge `consumer` for the product now (a per-person price, a category's, or the list price). */
  async quote(productId: number, consumer: string): Promise<Quote> {
    return toQuote(await this.query("quote", [productId, consumer]));
  }

  async escrow(): Promise<EscrowSummary> {
    return toEscrowSummary(await this.query("escrowSummary"));
  }

  async fulfilment(): Promise<Fulfilment> {
    return toFulfilment(await this.query("fulfilment"));
  }

  /** One page of the template's own invariant query (cards after `after`, up to `limit` of 1-200). */
  async invariantPage(after = 0, limit = 200): Promise<InvariantPage> {
    return toInvariantPage(await this.query("checkInvariant", [after, limit]));
  }

  /**
   * Checks the escrow invariant from the chain: the balance in the e-CNY ledger against escrow +
   * due, the sum of every card's escrow against the total, and the template's own checks on
   * every page of cards, all read at one height (read again, up to `attempts` times, if a block
   * is committed while the pages are read).
   */
  async check(o: { attempts?: number; pageSize?: number } = {}): Promise<InvariantReport> {
    const attempts = o.attempts ?? 20;
    for (let attempt = 1; ; attempt++) {
      const before = (await this.client.status()).height;
      const balance = BigInt((await this.client.ecnyBalance(this.address)).balance);
      const summary = await this.escrow();
      let cardEscrow = 0n;
      let cards = 0;
      let pages = 0;
      let contractOk = true;
      const problems: string[] = [];
      for (let after = 0; ; ) {
        const p = await this.invariantPage(after, o.pageSize ?? 200);
        pages += 1;
        cards += p.page.cards;
        cardEscrow += p.page.escrow;
        if (!p.ok) {
          contractOk = false;
          for (const x of p.problems) if (!problems.includes(x)) problems.push(x);
        }
        if (p.page.next === null) break;
        after = p.page.next;
      }
      const after = (await this.client.status()).height;
      if (after !== before) {
        if (attempt >= attempts)
          throw new CustosError(
            "CHECK_NO_QUIET_HEIGHT",
            `blocks kept coming while the programme was read (${attempts} attempts); try again when the chain is quieter`,
          );
        continue;
      }
      const surplus = balance - summary.escrowed - summary.due;
      if (surplus !== 0n)
        problems.unshift(
          `balance ${balance} fen in the e-CNY ledger != escrowed ${summary.escrowed} + due ${summary.due} fen`,
        );
      if (cardEscrow !== summary.escrowed)
        problems.unshift(
          `the cards' escrow adds up to ${cardEscrow} fen, the programme's total is ${summary.escrowed} fen`,
        );
      return {
        ok: surplus === 0n && cardEscrow === summary.escrowed && contractOk,
        address: this.address,
        height: before,
        balance,
        escrowed: summary.escrowed,
        due: summary.due,
        surplus,
        cardEscrow,
        cards,
        pages,
        contractOk,
        problems,
      };
    }
  }
}

/** The programme's transactions, unsigned. */
export class ProgrammeCalls {
  constructor(readonly address: string) {}

  private call<T>(method: string, args: unknown[], decode: (v: unknown) => T, value = 0n): PrepaidCall<T> {
    return { to: this.address, method, args, value, decode };
  }

  // the merchant
  addProduct(spec: ProductSpec): PrepaidCall<PrepaidProduct> {
    return this.call("addProduct", [spec], toProduct);
  }
  retireProduct(productId: number): PrepaidCall<PrepaidProduct> {
    return this.call("retireProduct", [productId], toProduct);
  }
  setPrice(
    productId: number,
    target: { consumer: string } | { category: string },
    price: bigint,
  ): PrepaidCall<Json> {
    return this.call("setPrice", [productId, target, price], (v) => obj(v, "price record"));
  }
  clearPrice(productId: number, target: { consumer: string } | { category: string }): PrepaidCall<null> {
    return this.call("clearPrice", [productId, target], nothing);
  }
  setCategory(consumer: string, category: string | null): PrepaidCall<null> {
    return this.call("setCategory", [consumer, category], nothing);
  }
  claim(settleLimit?: number): PrepaidCall<ClaimResult> {
    return this.call("claim", settleLimit === undefined ? [] : [settleLimit], (v) => {
      const r = obj(v, "claim");
      return { amount: fenOf(r.amount, "claim.amount"), claimed: fenOf(r.claimed, "claim.claimed") };
    });
  }
  announceClosure(reason: string): PrepaidCall<{ closesAt: number }> {
    return this.call("announceClosure", [reason], (v) => ({
      closesAt: intOf(obj(v, "announceClosure").closesAt, "closesAt"),
    }));
  }

  // the consumer
  /** `price`: exactly what the card costs this consumer (see quote); `amount`: open-amount products only (then also the price). */
  buy(productId: number, price: bigint, amount?: bigint): PrepaidCall<PrepaidCard> {
    return this.call("buy", amount === undefined ? [productId] : [productId, amount], toCard, price);
  }
  /** `quantity`: fen for a stored-value card, uses for a count card (default 1); a period card takes one visit. */
  consume(cardId: number, quantity?: bigint | number): PrepaidCall<PrepaidCard> {
    return this.call("consume", quantity === undefined ? [cardId] : [cardId, quantity], toCard);
  }
  refund(cardId: number): PrepaidCall<RefundResult> {
    return this.call("refund", [cardId], toRefund);
  }
  transferCard(cardId: number, to: string): PrepaidCall<PrepaidCard> {
    return this.call("transferCard", [cardId, to], toCard);
  }
  /** By the holder or the regulator. */
  reportLost(cardId: number): PrepaidCall<PrepaidCard> {
    return this.call("reportLost", [cardId], toCard);
  }
  cancelLoss(cardId: number): PrepaidCall<PrepaidCard> {
    return this.call("cancelLoss", [cardId], toCard);
  }

  // the regulator
  reissue(cardId: number, newHolder?: string): PrepaidCall<PrepaidCard> {
    return this.call("reissue", newHolder === undefined ? [cardId] : [cardId, newHolder], toCard);
  }
  freeze(reason: string): PrepaidCall<null> {
    return this.call("freeze", [reason], nothing);
  }
  unfreeze(): PrepaidCall<null> {
    return this.call("unfreeze", [], nothing);
  }
  /** One batch: up to `limit` (1-100) live cards after card `after`. */
  forceRefund(limit: number, after = 0): PrepaidCall<ForcedRefundBatch> {
    return this.call("forceRefund", [limit, after], toBatch);
  }

  // anyone
  settle(limit?: number): PrepaidCall<SettleResult> {
    return this.call("settle", limit === undefined ? [] : [limit], (v) => {
      const r = obj(v, "settle");
      return {
        cooled: intOf(r.cooled, "cooled"),
        accrued: intOf(r.accrued, "accrued"),
        released: fenOf(r.released, "released"),
      };
    });
  }
  remind(limit?: number): PrepaidCall<{ reminded: number }> {
    return this.call("remind", limit === undefined ? [] : [limit], (v) => ({
      reminded: intOf(obj(v, "remind").reminded, "reminded"),
    }));
  }
}

/** The transactions of one signer in one programme; each waits for its receipt. */
export class PrepaidActor {
  constructor(
    readonly programme: PrepaidProgramme,
    readonly wallet: Wallet,
  ) {}

  private get calls(): ProgrammeCalls {
    return this.programme.calls;
  }

  send<T>(call: PrepaidCall<T>, o: SendOptions = {}): Promise<PrepaidReceipt<T>> {
    return sendPrepaid(this.wallet, call, o);
  }

  addProduct(spec: ProductSpec, o?: SendOptions) {
    return this.send(this.calls.addProduct(spec), o);
  }
  retireProduct(productId: number, o?: SendOptions) {
    return this.send(this.calls.retireProduct(productId), o);
  }
  claim(o?: SendOptions & { settleLimit?: number }) {
    return this.send(this.calls.claim(o?.settleLimit), o);
  }
  announceClosure(reason: string, o?: SendOptions) {
    return this.send(this.calls.announceClosure(reason), o);
  }

  /**
   * Buys a card of the product with this wallet's e-CNY. The price is the consumer's quote,
   * unless `price` is given: then a quote that differs is refused before anything is signed
   * (PRICE_CHANGED), so the consumer never pays a price it did not agree to. Open-amount
   * products take `amount` (paid 1:1).
   */
  async buy(productId: number, o: SendOptions & { price?: bigint; amount?: bigint } = {}) {
    let price: bigint;
    if (o.amount !== undefined) price = o.amount;
    else {
      const q = await this.programme.quote(productId, this.wallet.address);
      if (q.price === null)
        throw new CustosError(
          "AMOUNT_REQUIRED",
          `product ${productId} is an open-amount card: choose the amount (${q.minAmount} to ${q.maxAmount} fen)`,
        );
      price = q.price;
    }
    if (o.price !== undefined && o.price !== price)
      throw new CustosError(
        "PRICE_CHANGED",
        `product ${productId} costs ${price} fen for this consumer, not the ${o.price} fen agreed (nothing was signed)`,
        { price: price.toString(), agreed: o.price.toString() },
      );
    return this.send(this.calls.buy(productId, price, o.amount), o);
  }
  consume(cardId: number, quantity?: bigint | number, o?: SendOptions) {
    return this.send(this.calls.consume(cardId, quantity), o);
  }
  refund(cardId: number, o?: SendOptions) {
    return this.send(this.calls.refund(cardId), o);
  }
  transferCard(cardId: number, to: string, o?: SendOptions) {
    return this.send(this.calls.transferCard(cardId, to), o);
  }
  reportLost(cardId: number, o?: SendOptions) {
    return this.send(this.calls.reportLost(cardId), o);
  }
  cancelLoss(cardId: number, o?: SendOptions) {
    return this.send(this.calls.cancelLoss(cardId), o);
  }
  reissue(cardId: number, newHolder?: string, o?: SendOptions) {
    return this.send(this.calls.reissue(cardId, newHolder), o);
  }
  freeze(reason: string, o?: SendOptions) {
    return this.send(this.calls.freeze(reason), o);
  }
  unfreeze(o?: SendOptions) {
    return this.send(this.calls.unfreeze(), o);
  }
  forceRefund(limit: number, after = 0, o?: SendOptions) {
    return this.send(this.calls.forceRefund(limit, after), o);
  }

  /**
   * Forced refunds to the end: batches of `batch` cards (1-100), each after the last card the
   * previous one reached, until the template says done. `onBatch` sees each committed batch (for
   * progress); a batch that fails stops the run with its error (PrepaidTxError), whose
   * `meta.after` is where to start again.
   */
  async forceRefunds(
    o: SendOptions & {
      batch?: number;
      after?: number;
      onBatch?: (r: PrepaidReceipt<ForcedRefundBatch>, after: number) => void;
    } = {},
  ): Promise<{
    batches: PrepaidReceipt<ForcedRefundBatch>[];
    refunded: number;
    amount: bigint;
    skipped: number[];
  }> {
    const batches: PrepaidReceipt<ForcedRefundBatch>[] = [];
    let after = o.after ?? 0;
    for (;;) {
      let r: PrepaidReceipt<ForcedRefundBatch>;
      try {
        r = await this.forceRefund(o.batch ?? 50, after, o);
      } catch (err) {
        if (err instanceof PrepaidTxError)
          throw new PrepaidTxError(
            err.code,
            `${err.message} (batch after card ${after}; ${batches.length} batch(es) done before it)`,
            err.hash,
            err.blockHeight,
            err.receipt,
            { after, batchesDone: batches.length },
          );
        throw err;
      }
      batches.push(r);
      o.onBatch?.(r, after);
      if (r.output.done || r.output.next === null) break;
      after = r.output.next;
    }
    return {
      batches,
      refunded: batches.reduce((n, b) => n + b.output.refunded, 0),
      amount: batches.reduce((n, b) => n + b.output.amount, 0n),
      skipped: batches.flatMap((b) => b.output.skipped),
    };
  }
  settle(limit?: number, o?: SendOptions) {
    return this.send(this.calls.settle(limit), o);
  }
  remind(limit?: number, o?: SendOptions) {
    return this.send(this.calls.remind(limit), o);
  }
}
