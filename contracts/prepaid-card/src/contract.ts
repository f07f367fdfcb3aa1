/**
 * Prepaid-card programme (预付资金监管): one instance per merchant programme. README.md states the
 * business rules, the parameters, every method, event and error code, and the invariant:
 *
 *   contract balance = Σ escrow of live cards + (released - claimed)   (what is due to the merchant)
 *   sold = escrow + released + refunded;  no card's consumed part exceeds what was paid.
 *
 * Money is bigint fen; time is the block's (env.time, ms). Period accruals and the end of
 * cooling-off are settled lazily, whenever a card is touched or by bounded `settle` batches, so no
 * call ever walks every card.
 */
import { balanceOf, emit, env, hasRole, revert, storage, transfer } from "@custos/contract-sdk";
import { ERRORS, type ErrorCode } from "./errors.js";
import {
  ceilDiv,
  consumedMoney,
  DAY_MS,
  dayIndex,
  escrowBase,
  escrowFor,
  hourIndex,
  type IssuerClass,
  MAX_REFUND_BATCH,
  NATIONAL_ESCROW_FLOOR_BPS,
  PERIOD_DAYS,
  type Period,
  ratioBps,
  refundFee,
} from "./rules.js";

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/**
 * A card's audit subject. Every event about a card names it (and its holder) as topics, so the
 * chain extends the card's and the holder's audit chains: an auditor's trace of a card or of a
 * consumer is provably complete (the host keeps one hash chain per subject).
 */
function cardSubject(id: number): string {
  return `card:${id}`;
}

function cardTopics(c: { id: number; holder: string }): string[] {
  return [cardSubject(c.id), c.holder];
}

export interface Config {
  merchant: string;
  institution: string;
  name: string;
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
}

export interface ProgrammeState {
  frozen: boolean;
  frozenAt: number;
  frozenReason: string;
  /** Frozen time so far (up to the closing date), which pauses every card's term. */
  pausedMs: number;
  closing: { at: number; closesAt: number; reason: string } | null;
  nextCard: number;
  nextProduct: number;
  nextPrice: number;
  cards: number;
  live: number;
  refundedCards: number;
  sold: bigint;
  escrow: bigint;
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  claimed: bigint;
  hour: number;
  hourUses: number;
  /** The last period card a settle batch reached (round robin). */
  cursor: number;
}

export type Kind = "stored" | "count" | "period";

export interface Product {
  id: number;
  name: string;
  kind: Kind;
  /** List price (fen); 0 for an open-amount stored-value product. */
  price: bigint;
  /** Stored value the card carries (fen); 0 for open amounts (the amount paid). */
  faceValue: bigint;
  open: boolean;
  minAmount: bigint;
  maxAmount: bigint;
  uses: number;
  period: Period | null;
  periods: number;
  usesPerDay: number;
  termDays: number;
  retired: boolean;
  addedAt: number;
}

export type CardStatus = "active" | "lost" | "refunded" | "finished" | "reissued";

export interface Card {
  id: number;
  product: number;
  kind: Kind;
  holder: string;
  status: CardStatus;
  /** What the consumer paid (fen). */
  paid: bigint;
  /** Service units: face value in fen (stored), uses (count), ms of term (period). */
  units: bigint;
  used: bigint;
  /** The escrowed share of the price, ceil(paid × escrowShareBps / 10,000). */
  base: bigint;
  /** paid - base, held in escrow too until cooling-off ends, then released to the merchant. */
  hold: bigint;
  /** This card's e-CNY in the contract now. */
  escrow: bigint;
  /** The part of `paid` delivered so far (pro rata on units, rounded down). */
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  /** The price record that applied (0: the product's list price) and how it was chosen. */
  priceId: number;
  basis: string;
  personal: boolean;
  at: number;
  cool: boolean;
  coolEnd: number;
  termMs: number;
  /** Active (unpaused) ms of term at the checkpoint `chk`; `p0` = programme paused ms then. */
  act: number;
  chk: number;
  p0: number;
  usesPerDay: number;
  day: number;
  dayUses: number;
  remindAt: number;
  reminded: boolean;
  /** Reissue links: the card this one replaced, the card that replaced this one (0: none). */
  from: number;
  to: number;
}

// ---------------------------------------------------------------------------------------------
// Call context (module variables start afresh on every call)
// ---------------------------------------------------------------------------------------------

let cfg: Config;
let st: ProgrammeState;
let now: number;

const MAX_BATCH = 100;
/** Cards a forced-refund batch takes at most: each refund is an event of its own (a call emits at most 64). */
const ADDRESS_RE = /^0x[0-9a-f]{40}$/;
const CATEGORY_RE = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_TERM_DAYS = 3650;
const MAX_CARD_CAP = 10_000_000n; // 100,000 yuan: a sanity bound; the parameter is the real rule

function fail(code: ErrorCode, detail?: string): never {
  return revert(code, detail ?? ERRORS[code]);
}

/** Loads the programme; only `buy` accepts attached e-CNY (anything else would sit outside escrow). */
function begin(acceptsValue = false): void {
  if (!acceptsValue && env.value !== 0n) fail("VALUE_NOT_ACCEPTED");
  cfg = storage.getJson<Config>("cfg") as Config;
  st = storage.getJson<ProgrammeState>("st") as ProgrammeState;
  now = env.time;
}

function commit(): void {
  storage.setJson("st", st);
}

/** A stored JSON value as getJson reads it (bigints written {"$n": "..."}), for scanned entries. */
function parse<T>(v: string): T {
  return JSON.parse(v, (_k, x) =>
    x !== null && typeof x === "object" && typeof x.$n === "string" && Object.keys(x).length === 1
      ? BigInt(x.$n)
      : x,
  ) as T;
}

const pad = (n: number) => String(n).padStart(10, "0");
const padTime = (t: number) => String(Math.max(0, t)).padStart(15, "0");
const cardKey = (id: number) => `k:${pad(id)}`;
const due = () => st.released - st.claimed;
const closed = () => st.closing !== null && now >= st.closing.closesAt;
const isMerchant = (a: string) => a === cfg.merchant && hasRole(a, "merchant");

function requireMerchant(): void {
  if (!isMerchant(env.caller)) fail("NOT_MERCHANT");
}

function requireRegulator(): void {
  if (!hasRole(env.caller, "regulator")) fail("NOT_REGULATOR");
}

function requireSelling(): void {
  if (st.frozen) fail("PROGRAMME_FROZEN", `the regulator froze the programme: ${st.frozenReason}`);
  if (closed()) fail("PROGRAMME_CLOSED");
  if (st.closing !== null) fail("PROGRAMME_CLOSING");
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

function int(v: unknown, what: string, min: number, max: number, code: ErrorCode = "INVALID_ARGUMENTS") {
  let n = Number.NaN;
  if (typeof v === "number") n = v;
  else if (typeof v === "bigint" && v >= BigInt(min) && v <= BigInt(max)) n = Number(v);
  else if (typeof v === "string" && /^[0-9]{1,15}$/.test(v)) n = Number(v);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    fail(code, `${what} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** An amount in fen: a bigint, a safe integer or a decimal string (never a fraction). */
function fen(v: unknown, what: string, min: bigint, max: bigint, code: ErrorCode = "INVALID_ARGUMENTS") {
  let n: bigint | undefined;
  if (typeof v === "bigint") n = v;
  else if (typeof v === "number" && Number.isSafeInteger(v)) n = BigInt(v);
  else if (typeof v === "string" && /^[0-9]{1,18}$/.test(v)) n = BigInt(v);
  if (n === undefined || n < min || n > max) fail(code, `${what} must be whole fen from ${min} to ${max}`);
  return n;
}

function address(v: unknown, what: string, code: ErrorCode = "INVALID_ARGUMENTS"): string {
  if (typeof v !== "string" || !ADDRESS_RE.test(v)) fail(code, `${what} must be an address (0x + 40 hex)`);
  return v;
}

function text(v: unknown, what: string, max: number, code: ErrorCode = "INVALID_ARGUMENTS"): string {
  if (typeof v !== "string" || v.length < 1 || v.length > max) {
    fail(code, `${what} must be text of 1 to ${max} characters`);
  }
  return v;
}

function record(v: unknown, what: string, known: string[], code: ErrorCode): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) fail(code, `${what} must be an object`);
  for (const k of Object.keys(v)) {
    if (!known.includes(k)) fail(code, `${what} has no field ${k} (known: ${known.join(", ")})`);
  }
  return v as Record<string, unknown>;
}

function orDefault<T>(v: unknown, dflt: T, parse: (v: unknown) => T): T {
  return v === undefined || v === null ? dflt : parse(v);
}

// ---------------------------------------------------------------------------------------------
// Instantiation
// ---------------------------------------------------------------------------------------------

/** Runs once, when an institution instantiates the template: checks and stores the parameters. */
export function init(params: unknown): void {
  if (storage.has("cfg")) fail("NOT_AUTHORIZED", "the programme is set up already");
  if (!hasRole(env.caller, "institution")) fail("NOT_INSTITUTION");
  const P = "INVALID_PARAMS";
  const p = record(
    params,
    "params",
    [
      "merchant",
      "name",
      "issuerClass",
      "escrowFloorBps",
      "escrowShareBps",
      "cardCap",
      "maxTermDays",
      "coolingOffDays",
      "closureNoticeDays",
      "refund",
      "reminders",
      "risk",
    ],
    P,
  );
  const merchant = address(p.merchant, "merchant", P);
  if (!hasRole(merchant, "merchant"))
    fail("NOT_MERCHANT", `${merchant} is not a member with the merchant role`);
  const issuerClass = orDefault<IssuerClass>(p.issuerClass, "other", (v) => {
    if (typeof v !== "string" || !Object.hasOwn(NATIONAL_ESCROW_FLOOR_BPS, v)) {
      fail(P, `issuerClass must be one of ${Object.keys(NATIONAL_ESCROW_FLOOR_BPS).join(", ")}`);
    }
    return v as IssuerClass;
  });
  const national = NATIONAL_ESCROW_FLOOR_BPS[issuerClass];
  const escrowFloorBps = orDefault(p.escrowFloorBps, national, (v) =>
    int(v, "escrowFloorBps", national, 10000, P),
  );
  const escrowShareBps = orDefault(p.escrowShareBps, 10000, (v) =>
    int(v, "escrowShareBps", escrowFloorBps, 10000, P),
  );
  const cardCap = orDefault(p.cardCap, 500_000n, (v) => fen(v, "cardCap", 1n, MAX_CARD_CAP, P));
  const maxTermDays = orDefault(p.maxTermDays, 730, (v) => int(v, "maxTermDays", 1, MAX_TERM_DAYS, P));
  const coolingOffDays = orDefault(p.coolingOffDays, 7, (v) => int(v, "coolingOffDays", 0, 90, P));
  const closureNoticeDays = orDefault(p.closureNoticeDays, 30, (v) => int(v, "closureNoticeDays", 0, 365, P));
  const r = record(p.refund, "refund", ["afterCoolingOff", "feeBps"], P);
  const afterCoolingOff = orDefault(r.afterCoolingOff, false, (v) => {
    if (typeof v !== "boolean") fail(P, "refund.afterCoolingOff must be true or false");
    return v;
  });
  const feeBps = orDefault(r.feeBps, 0, (v) => int(v, "refund.feeBps", 0, 2000, P));
  const m = record(p.reminders, "reminders", ["lowBalance", "usesLeft", "expiryDays"], P);
  const k = record(p.risk, "risk", ["cardUsesPerDay", "programmeUsesPerHour"], P);
  cfg = {
    merchant,
    institution: env.caller,
    name: text(p.name, "name", 64, P),
    issuerClass,
    escrowFloorBps,
    escrowShareBps,
    cardCap,
    maxTermDays,
    coolingOffDays,
    closureNoticeDays,
    refund: { afterCoolingOff, feeBps },
    reminders: {
      lowBalance: orDefault(m.lowBalance, 5_000n, (v) => fen(v, "reminders.lowBalance", 0n, cardCap, P)),
      usesLeft: orDefault(m.usesLeft, 2, (v) => int(v, "reminders.usesLeft", 0, 1000, P)),
      expiryDays: orDefault(m.expiryDays, 7, (v) => int(v, "reminders.expiryDays", 0, 365, P)),
    },
    risk: {
      cardUsesPerDay: orDefault(k.cardUsesPerDay, 10, (v) => int(v, "risk.cardUsesPerDay", 1, 100_000, P)),
      programmeUsesPerHour: orDefault(k.programmeUsesPerHour, 1000, (v) =>
        int(v, "risk.programmeUsesPerHour", 1, 10_000_000, P),
      ),
    },
    createdAt: env.time,
    createdHeight: env.height,
  };
  st = {
    frozen: false,
    frozenAt: 0,
    frozenReason: "",
    pausedMs: 0,
    closing: null,
    nextCard: 1,
    nextProduct: 1,
    nextPrice: 1,
    cards: 0,
    live: 0,
    refundedCards: 0,
    sold: 0n,
    escrow: 0n,
    consumed: 0n,
    released: 0n,
    refunded: 0n,
    claimed: 0n,
    hour: 0,
    hourUses: 0,
    cursor: 0,
  };
  storage.setJson("cfg", cfg);
  commit();
  emit("ProgrammeOpened", { name: cfg.name, merchant, institution: env.caller, escrowShareBps, cardCap });
}

// ---------------------------------------------------------------------------------------------
// Products and prices (the merchant)
// ---------------------------------------------------------------------------------------------

/**
 * addProduct({ name, kind, ... }) -> Product. Stored value: faceValue (and price, default the face
 * value, at most it) or open: true with minAmount/maxAmount (paid 1:1); count: uses and price;
 * period: period (week|month|quarter|year), periods (default 1), price, usesPerDay (0: no limit).
 * validDays (stored and count) defaults to the programme's maximum term.
 */
export function addProduct(spec: unknown): Product {
  begin();
  requireMerchant();
  requireSelling();
  const s = record(
    spec,
    "product",
    [
      "name",
      "kind",
      "price",
      "faceValue",
      "open",
      "minAmount",
      "maxAmount",
      "uses",
      "period",
      "periods",
      "usesPerDay",
      "validDays",
    ],
    "INVALID_ARGUMENTS",
  );
  const cap = cfg.cardCap;
  const kind = s.kind;
  if (kind !== "stored" && kind !== "count" && kind !== "period") {
    fail("INVALID_ARGUMENTS", "kind must be stored, count or period");
  }
  const product: Product = {
    id: st.nextProduct,
    name: text(s.name, "name", 64),
    kind,
    price: 0n,
    faceValue: 0n,
    open: false,
    minAmount: 0n,
    maxAmount: 0n,
    uses: 0,
    period: null,
    periods: 0,
    usesPerDay: 0,
    termDays: 0,
    retired: false,
    addedAt: now,
  };
  const money = (v: unknown, what: string) => {
    const n = fen(v, what, 1n, MAX_CARD_CAP);
    if (n > cap) fail("OVER_CARD_CAP", `${what} ${n} fen is over the per-card cap of ${cap} fen`);
    return n;
  };
  const term = (days: number) => {
    if (days > cfg.maxTermDays) {
      fail("OVER_MAX_TERM", `a term of ${days} days is over the maximum of ${cfg.maxTermDays} days`);
    }
    return days;
  };
  const validDays = () =>
    term(orDefault(s.validDays, cfg.maxTermDays, (v) => int(v, "validDays", 1, MAX_TERM_DAYS)));
  if (kind === "stored") {
    if (s.open === true) {
      product.open = true;
      product.minAmount = money(s.minAmount ?? 1n, "minAmount");
      product.maxAmount = money(s.maxAmount ?? cap, "maxAmount");
      if (product.minAmount > product.maxAmount) fail("INVALID_ARGUMENTS", "minAmount is over maxAmount");
    } else {
      product.faceValue = money(s.faceValue, "faceValue");
      product.price = orDefault(s.price, product.faceValue, (v) => money(v, "price"));
      if (product.price > product.faceValue)
        fail("INVALID_ARGUMENTS", "a stored-value price is at most its face value");
    }
    product.termDays = validDays();
  } else if (kind === "count") {
    product.uses = int(s.uses, "uses", 1, 10_000);
    product.price = money(s.price, "price");
    product.termDays = validDays();
  } else {
    const period = s.period;
    if (typeof period !== "string" || !Object.hasOwn(PERIOD_DAYS, period)) {
      fail("INVALID_ARGUMENTS", `period must be one of ${Object.keys(PERIOD_DAYS).join(", ")}`);
    }
    product.period = period as Period;
    product.periods = orDefault(s.periods, 1, (v) => int(v, "periods", 1, 520));
    product.termDays = term(product.periods * PERIOD_DAYS[product.period]);
    product.usesPerDay = orDefault(s.usesPerDay, 0, (v) => int(v, "usesPerDay", 0, 100));
    product.price = money(s.price, "price");
  }
  st.nextProduct += 1;
  storage.setJson(`p:${pad(product.id)}`, product);
  commit();
  emit("ProductAdded", { product: product.id, name: product.name, kind, price: product.price });
  return product;
}

/** retireProduct(productId): no more sales; cards sold stay as they are. */
export function retireProduct(productId: unknown): Product {
  begin();
  requireMerchant();
  const product = loadProduct(productId);
  if (product.retired) fail("PRODUCT_RETIRED");
  product.retired = true;
  storage.setJson(`p:${pad(product.id)}`, product);
  emit("ProductRetired", { product: product.id });
  return product;
}

interface PriceTarget {
  key: string;
  label: string;
}

function priceTarget(v: unknown): PriceTarget {
  const t = record(v, "target", ["consumer", "category"], "INVALID_ARGUMENTS");
  if ((t.consumer === undefined) === (t.category === undefined)) {
    fail("INVALID_ARGUMENTS", "a per-person price names either a consumer or a category");
  }
  if (t.consumer !== undefined) {
    const a = address(t.consumer, "target.consumer");
    return { key: `a:${a}`, label: `consumer:${a}` };
  }
  if (typeof t.category !== "string" || !CATEGORY_RE.test(t.category)) {
    fail("INVALID_ARGUMENTS", "a category is 1-32 of a-z, 0-9 and -, starting with a letter");
  }
  return { key: `c:${t.category}`, label: `category:${t.category}` };
}

/**
 * setPrice(productId, { consumer } | { category }, price) -> price record: a per-person price,
 * fixed before a purchase; every change is a new, immutable record that cards name.
 */
export function setPrice(productId: unknown, target: unknown, price: unknown): Record<string, unknown> {
  begin();
  requireMerchant();
  const product = loadProduct(productId);
  if (product.retired) fail("PRODUCT_RETIRED");
  if (product.open) fail("PRICE_NOT_APPLICABLE");
  const t = priceTarget(target);
  const amount = fen(price, "price", 1n, MAX_CARD_CAP);
  if (amount > cfg.cardCap)
    fail("OVER_CARD_CAP", `${amount} fen is over the per-card cap of ${cfg.cardCap} fen`);
  if (product.kind === "stored" && amount > product.faceValue) {
    fail("INVALID_ARGUMENTS", "a stored-value price is at most its face value");
  }
  const rec = {
    id: st.nextPrice,
    product: product.id,
    target: t.label,
    price: amount,
    at: now,
    height: env.height,
  };
  st.nextPrice += 1;
  storage.setJson(`pr:${pad(rec.id)}`, rec);
  storage.set(`pp:${pad(product.id)}:${t.key}`, String(rec.id));
  commit();
  emit("PriceSet", rec);
  return rec;
}

/** clearPrice(productId, target): the consumer or category pays the list price again. */
export function clearPrice(productId: unknown, target: unknown): void {
  begin();
  requireMerchant();
  const product = loadProduct(productId);
  const t = priceTarget(target);
  const key = `pp:${pad(product.id)}:${t.key}`;
  if (!storage.has(key)) fail("PRICE_NOT_FOUND");
  storage.delete(key);
  emit("PriceCleared", { product: product.id, target: t.label });
}

/** setCategory(consumer, category | null): the merchant's record of a consumer's category (student...). */
export function setCategory(consumer: unknown, category: unknown): void {
  begin();
  requireMerchant();
  const a = address(consumer, "consumer");
  if (!hasRole(a, "consumer")) fail("NOT_CONSUMER");
  if (category === null || category === undefined) {
    storage.delete(`cat:${a}`);
  } else {
    if (typeof category !== "string" || !CATEGORY_RE.test(category)) {
      fail("INVALID_ARGUMENTS", "a category is 1-32 of a-z, 0-9 and -, starting with a letter");
    }
    storage.set(`cat:${a}`, category);
  }
  emit("CategorySet", { consumer: a, category: category ?? null });
}

function loadProduct(id: unknown): Product {
  const n = int(id, "productId", 1, 1e10);
  const p = storage.getJson<Product>(`p:${pad(n)}`);
  if (p === null) fail("PRODUCT_NOT_FOUND", `no product ${n}`);
  return p;
}

interface Quote {
  price: bigint;
  priceId: number;
  basis: string;
  personal: boolean;
}

/** The price `consumer` pays for `product` now: its own, else its category's, else the list price. */
function priceFor(product: Product, consumer: string): Quote {
  const own = storage.get(`pp:${pad(product.id)}:a:${consumer}`);
  const category = storage.get(`cat:${consumer}`);
  const byCategory =
    own === null && category !== null ? storage.get(`pp:${pad(product.id)}:c:${category}`) : null;
  const id = own ?? byCategory;
  if (id === null) return { price: product.price, priceId: 0, basis: "list", personal: false };
  const rec = storage.getJson<{ price: bigint; target: string }>(`pr:${pad(Number(id))}`);
  if (rec === null) fail("PRICE_NOT_FOUND");
  return { price: rec.price, priceId: Number(id), basis: rec.target, personal: true };
}

// ---------------------------------------------------------------------------------------------
// Cards: storage, indexes, time
// ---------------------------------------------------------------------------------------------

/** The index entries a card should have, all derived from the card itself. */
function indexKeys(c: Card): string[] {
  const id = pad(c.id);
  const keys = [`h:${c.holder}:${id}`];
  if (c.status === "active" || c.status === "lost") {
    keys.push(`l:${id}`);
    if (c.kind === "period") keys.push(`lp:${id}`);
    if (c.cool) keys.push(`hd:${padTime(c.coolEnd)}:${id}`);
    if (!c.reminded) keys.push(`e:${padTime(c.remindAt)}:${id}`);
  }
  return keys;
}

interface Loaded {
  c: Card;
  keys: string[];
}

function loadCard(id: unknown): Loaded {
  const n = int(id, "cardId", 1, 1e10);
  const c = storage.getJson<Card>(cardKey(n));
  if (c === null) fail("CARD_NOT_FOUND", `no card ${n}`);
  return { c, keys: indexKeys(c) };
}

/** Writes the card and brings its index entries (and the live-card count) in line with it. */
function saveCard(c: Card, before: string[]): void {
  storage.setJson(cardKey(c.id), c);
  const after = indexKeys(c);
  for (const k of before) {
    if (after.includes(k)) continue;
    storage.delete(k);
    if (k.startsWith("l:")) st.live -= 1;
  }
  for (const k of after) {
    if (before.includes(k)) continue;
    storage.set(k, "1");
    if (k.startsWith("l:")) st.live += 1;
  }
}

/** ms of [a, b) that count against terms: nothing after the closing date does. */
function span(a: number, b: number): number {
  const cap = st.closing === null ? Number.MAX_SAFE_INTEGER : st.closing.closesAt;
  return Math.max(0, Math.min(b, cap) - Math.min(a, cap));
}

/** The programme's frozen ms up to now (a freeze pauses every card's term). */
function pausedNow(): number {
  return st.pausedMs + (st.frozen ? span(st.frozenAt, now) : 0);
}

/** The card's active (unpaused) ms of term by now, at most its term. */
function activeAt(c: Card): number {
  if (c.status !== "active") return c.act;
  return Math.min(c.termMs, c.act + span(c.chk, now) - (pausedNow() - c.p0));
}

function checkpoint(c: Card): void {
  c.act = activeAt(c);
  c.chk = now;
  c.p0 = pausedNow();
}

/** A stored-value or count card whose term ran out (period cards finish instead). */
function expired(c: Card): boolean {
  return c.kind !== "period" && c.status === "active" && activeAt(c) >= c.termMs;
}

/** ms of term left while it runs, or null while it is paused (lost card, frozen or closed programme). */
function remainingMs(c: Card): number | null {
  if (c.status !== "active" || st.frozen || closed()) return null;
  return c.termMs - activeAt(c);
}

/** Moves a card's use from `used` to `used2` units: consumed money and escrow follow; returns the release. */
function applyUsed(c: Card, used2: bigint): bigint {
  const consumed2 = consumedMoney(c.paid, c.units, used2);
  const escrow2 = c.hold + escrowFor(c.paid, c.base, consumed2);
  const release = c.escrow - escrow2;
  st.consumed += consumed2 - c.consumed;
  c.used = used2;
  c.consumed = consumed2;
  c.escrow = escrow2;
  c.released += release;
  st.escrow -= release;
  st.released += release;
  return release;
}

/** Cooling-off ends (its time passed, the card was used or transferred): the held part goes to the merchant. */
function endCooling(c: Card): void {
  if (!c.cool) return;
  c.cool = false;
  const release = c.hold;
  c.hold = 0n;
  c.escrow -= release;
  c.released += release;
  st.escrow -= release;
  st.released += release;
}

/** A period card's escrow accrues to the merchant by active time (never while cooling off). */
function accrue(c: Card): void {
  if (c.kind !== "period" || c.status !== "active" || c.cool) return;
  checkpoint(c);
  applyUsed(c, BigInt(c.act));
  if (c.used >= c.units) c.status = "finished";
}

/** Brings a card up to now: cooling-off that has ended, period accrual. */
function touch(c: Card): void {
  if (c.status !== "active" && c.status !== "lost") return;
  if (c.cool && now >= c.coolEnd) endCooling(c);
  accrue(c);
}

function refuseDead(c: Card, refundedCode: ErrorCode = "CARD_REFUNDED"): void {
  if (c.status === "refunded") fail(refundedCode);
  if (c.status === "reissued") fail("CARD_REISSUED", `card ${c.id} was reissued as card ${c.to}`);
  if (c.status === "finished") fail("CARD_FINISHED");
}

/** A card the holder can use now. */
function requireUsable(c: Card): void {
  refuseDead(c);
  if (c.status === "lost") fail("CARD_LOST");
  if (st.frozen) fail("PROGRAMME_FROZEN", `the regulator froze the programme: ${st.frozenReason}`);
  if (closed()) fail("PROGRAMME_CLOSED");
  if (expired(c)) fail("CARD_EXPIRED");
}

/** Pays the card's escrow (less `fee`, which goes to the merchant) back to its holder. */
function payRefund(c: Card, fee: bigint): bigint {
  const amount = c.escrow - fee;
  c.released += fee;
  c.refunded += amount;
  st.released += fee;
  st.escrow -= c.escrow;
  st.refunded += amount;
  st.refundedCards += 1;
  c.escrow = 0n;
  c.hold = 0n;
  c.cool = false;
  c.status = "refunded";
  if (amount > 0n) transfer(c.holder, amount);
  return amount;
}

// ---------------------------------------------------------------------------------------------
// The consumer
// ---------------------------------------------------------------------------------------------

/**
 * buy(productId, amount?) -> Card, with the price attached as e-CNY (env.value). `amount` only
 * for open-amount stored-value products (fen, paid 1:1). The applicable price is the consumer's
 * own, else its category's, else the list price (`quote` tells it in advance).
 */
export function buy(productId: unknown, amount?: unknown): CardView {
  begin(true);
  requireSelling();
  if (!hasRole(env.caller, "consumer")) fail("NOT_CONSUMER");
  const product = loadProduct(productId);
  if (product.retired) fail("PRODUCT_RETIRED");
  let q: Quote;
  let units: bigint;
  if (product.open) {
    const a = fen(amount, "amount", 1n, MAX_CARD_CAP);
    if (a > cfg.cardCap) fail("OVER_CARD_CAP", `${a} fen is over the per-card cap of ${cfg.cardCap} fen`);
    if (a < product.minAmount || a > product.maxAmount) {
      fail("WRONG_AMOUNT", `this product takes ${product.minAmount} to ${product.maxAmount} fen`);
    }
    q = { price: a, priceId: 0, basis: "open", personal: false };
    units = a;
  } else {
    if (amount !== undefined && amount !== null)
      fail("INVALID_ARGUMENTS", "only open-amount products take an amount");
    q = priceFor(product, env.caller);
    units =
      product.kind === "stored"
        ? product.faceValue
        : product.kind === "count"
          ? BigInt(product.uses)
          : BigInt(product.termDays * DAY_MS);
  }
  if (q.price > cfg.cardCap || (product.kind === "stored" && units > cfg.cardCap)) fail("OVER_CARD_CAP");
  if (env.value !== q.price) {
    fail("WRONG_AMOUNT", `the price is ${q.price} fen (${q.basis}); ${env.value} fen was attached`);
  }
  const base = escrowBase(q.price, cfg.escrowShareBps);
  const termMs = product.termDays * DAY_MS;
  const cool = cfg.coolingOffDays > 0;
  const c: Card = {
    id: st.nextCard,
    product: product.id,
    kind: product.kind,
    holder: env.caller,
    status: "active",
    paid: q.price,
    units,
    used: 0n,
    base,
    hold: cool ? q.price - base : 0n,
    escrow: cool ? q.price : base,
    consumed: 0n,
    released: cool ? 0n : q.price - base,
    refunded: 0n,
    priceId: q.priceId,
    basis: q.basis,
    personal: q.personal,
    at: now,
    cool,
    coolEnd: now + cfg.coolingOffDays * DAY_MS,
    termMs,
    act: 0,
    chk: now,
    p0: pausedNow(),
    usesPerDay: product.usesPerDay,
    day: 0,
    dayUses: 0,
    remindAt: now + termMs - cfg.reminders.expiryDays * DAY_MS,
    reminded: false,
    from: 0,
    to: 0,
  };
  st.nextCard += 1;
  st.cards += 1;
  st.sold += c.paid;
  st.escrow += c.escrow;
  st.released += c.released;
  saveCard(c, []);
  commit();
  emit(
    "CardSold",
    {
      card: c.id,
      product: product.id,
      holder: c.holder,
      paid: c.paid,
      escrowed: c.escrow,
      priceId: c.priceId,
      basis: c.basis,
    },
    cardTopics(c),
  );
  return cardView(c);
}

/**
 * consume(cardId, quantity?) -> Card: the holder uses the card (核销). Stored value: quantity is
 * the amount in fen; count cards: the number of uses (default 1); period cards: one visit (their
 * escrow accrues by time). The money consumed is released from escrow to the merchant.
 */
export function consume(cardId: unknown, quantity?: unknown): CardView {
  begin();
  const { c, keys } = loadCard(cardId);
  if (env.caller !== c.holder) fail("NOT_HOLDER");
  touch(c);
  requireUsable(c);
  const releasedBefore = st.released;
  const left = c.units - c.used;
  let q: bigint;
  if (c.kind === "stored") {
    q = fen(quantity, "amount", 1n, MAX_CARD_CAP);
    if (q > left) fail("INSUFFICIENT_BALANCE", `the card holds ${left} fen, not ${q}`);
  } else if (c.kind === "count") {
    q = BigInt(orDefault(quantity, 1, (v) => int(v, "uses", 1, 10_000)));
    if (q > left) fail("NOT_ENOUGH_USES", `the card has ${left} uses left, not ${q}`);
  } else {
    q = BigInt(orDefault(quantity, 1, (v) => int(v, "uses", 1, 1)));
  }
  const today = dayIndex(now);
  if (c.day !== today) {
    c.day = today;
    c.dayUses = 0;
  }
  if (c.usesPerDay > 0 && c.dayUses >= c.usesPerDay) {
    fail("DAILY_LIMIT_REACHED", `the card allows ${c.usesPerDay} uses a day`);
  }
  c.dayUses += 1;
  endCooling(c);
  if (c.kind === "period") accrue(c);
  else applyUsed(c, c.used + q);
  if (c.kind !== "period" && c.used >= c.units) c.status = "finished";
  const remaining = c.units - c.used;
  emit(
    "CardConsumed",
    {
      card: c.id,
      holder: c.holder,
      quantity: q,
      remaining,
      consumed: c.consumed,
      released: st.released - releasedBefore,
    },
    cardTopics(c),
  );
  remindAndFlag(c, left, remaining);
  saveCard(c, keys);
  commit();
  return cardView(c);
}

function remindAndFlag(c: Card, before: bigint, after: bigint): void {
  const r = cfg.reminders;
  if (c.kind === "stored" && after > 0n && after <= r.lowBalance && before > r.lowBalance) {
    emit("LowBalance", { card: c.id, holder: c.holder, balance: after }, cardTopics(c));
  }
  const usesLeft = BigInt(r.usesLeft);
  if (c.kind === "count" && after > 0n && after <= usesLeft && before > usesLeft) {
    emit("FewUsesLeft", { card: c.id, holder: c.holder, usesLeft: after }, cardTopics(c));
  }
  const rest = remainingMs(c);
  if (c.status === "active" && !c.reminded && rest !== null && rest <= r.expiryDays * DAY_MS) {
    c.reminded = true;
    emit("CardExpiring", { card: c.id, holder: c.holder, expiresAt: now + rest }, cardTopics(c));
  }
  if (c.dayUses === cfg.risk.cardUsesPerDay + 1) {
    emit(
      "RiskFlagged",
      {
        scope: "card",
        card: c.id,
        holder: c.holder,
        uses: c.dayUses,
        window: "day",
        threshold: cfg.risk.cardUsesPerDay,
      },
      cardTopics(c),
    );
  }
  const hour = hourIndex(now);
  if (st.hour !== hour) {
    st.hour = hour;
    st.hourUses = 0;
  }
  st.hourUses += 1;
  if (st.hourUses === cfg.risk.programmeUsesPerHour + 1) {
    emit("RiskFlagged", {
      scope: "programme",
      uses: st.hourUses,
      window: "hour",
      threshold: cfg.risk.programmeUsesPerHour,
    });
  }
}

/**
 * refund(cardId) -> { card, amount, fee, reason }: the holder takes back the card's escrowed,
 * unconsumed part — in full within the cooling-off period while unused; always while the
 * programme is frozen, closing or closed, or once the card has expired; otherwise only if the
 * parameters allow refunds on request (less the fee).
 */
export function refund(cardId: unknown): { card: number; amount: bigint; fee: bigint; reason: string } {
  begin();
  const { c, keys } = loadCard(cardId);
  if (env.caller !== c.holder) fail("NOT_HOLDER");
  touch(c);
  refuseDead(c, "ALREADY_REFUNDED");
  if (c.status === "lost") fail("CARD_LOST");
  let fee = 0n;
  let reason: string;
  if (c.cool) reason = "cooling-off";
  else if (st.frozen) reason = "programme-frozen";
  else if (closed()) reason = "programme-closed";
  else if (st.closing !== null) reason = "programme-closing";
  else if (expired(c)) reason = "card-expired";
  else if (cfg.refund.afterCoolingOff) {
    reason = "on-request";
    fee = refundFee(c.escrow, cfg.refund.feeBps);
  } else if (now < c.coolEnd) fail("CARD_USED");
  else fail("COOLING_OFF_OVER");
  const amount = payRefund(c, fee);
  emit("CardRefunded", { card: c.id, holder: c.holder, amount, fee, reason }, cardTopics(c));
  saveCard(c, keys);
  commit();
  return { card: c.id, amount, fee, reason };
}

/** transferCard(cardId, to) -> Card: to another consumer (not a card bought at a per-person price). */
export function transferCard(cardId: unknown, to: unknown): CardView {
  begin();
  const { c, keys } = loadCard(cardId);
  if (env.caller !== c.holder) fail("NOT_HOLDER");
  const next = address(to, "to");
  if (next === c.holder) fail("SAME_HOLDER");
  if (!hasRole(next, "consumer")) fail("NOT_CONSUMER", `${next} is not a member with the consumer role`);
  touch(c);
  requireUsable(c);
  if (c.personal) fail("NOT_TRANSFERABLE", `card ${c.id} was bought at a per-person price (${c.basis})`);
  endCooling(c);
  accrue(c);
  const from = c.holder;
  c.holder = next;
  emit("CardTransferred", { card: c.id, from, to: next }, [cardSubject(c.id), from, next]);
  saveCard(c, keys);
  commit();
  return cardView(c);
}

function holderOrRegulator(c: Card): void {
  if (env.caller !== c.holder && !hasRole(env.caller, "regulator")) fail("NOT_HOLDER");
}

/** reportLost(cardId) -> Card (挂失), by the holder or the regulator: no use, transfer or refund; the term pauses. */
export function reportLost(cardId: unknown): CardView {
  begin();
  const { c, keys } = loadCard(cardId);
  holderOrRegulator(c);
  touch(c);
  refuseDead(c);
  if (c.status === "lost") fail("CARD_LOST", "the card is reported lost already");
  checkpoint(c);
  c.status = "lost";
  emit("CardLost", { card: c.id, holder: c.holder, by: env.caller }, cardTopics(c));
  saveCard(c, keys);
  commit();
  return cardView(c);
}

/** cancelLoss(cardId) -> Card, by the holder or the regulator: the card works again, its term runs on. */
export function cancelLoss(cardId: unknown): CardView {
  begin();
  const { c, keys } = loadCard(cardId);
  holderOrRegulator(c);
  if (c.status !== "lost") fail("CARD_NOT_LOST");
  c.status = "active";
  c.chk = now;
  c.p0 = pausedNow();
  touch(c);
  emit("CardLossCancelled", { card: c.id, holder: c.holder, by: env.caller }, cardTopics(c));
  saveCard(c, keys);
  commit();
  return cardView(c);
}

// ---------------------------------------------------------------------------------------------
// The regulator
// ---------------------------------------------------------------------------------------------

/** reissue(cardId, newHolder?) -> Card (补办): a lost card's value moves to a new card, same or new holder. */
export function reissue(cardId: unknown, newHolder?: unknown): CardView {
  begin();
  requireRegulator();
  const old = loadCard(cardId);
  const c = old.c;
  if (c.status !== "lost") {
    refuseDead(c);
    fail("CARD_NOT_LOST");
  }
  const holder = newHolder === undefined || newHolder === null ? c.holder : address(newHolder, "newHolder");
  if (!hasRole(holder, "consumer")) fail("NOT_CONSUMER", `${holder} is not a member with the consumer role`);
  const n: Card = {
    ...c,
    id: st.nextCard,
    holder,
    status: "active",
    chk: now,
    p0: pausedNow(),
    from: c.id,
    to: 0,
  };
  st.nextCard += 1;
  c.status = "reissued";
  c.to = n.id;
  c.escrow = 0n;
  c.hold = 0n;
  c.cool = false;
  saveCard(c, old.keys);
  touch(n);
  saveCard(n, []);
  commit();
  emit("CardReissued", { card: c.id, newCard: n.id, holder: n.holder, escrow: n.escrow }, [
    cardSubject(c.id),
    cardSubject(n.id),
    n.holder,
  ]);
  return cardView(n);
}

/** freeze(reason): no sales, use, transfer or merchant claims; terms pause; refunds stay open. */
export function freeze(reason: unknown): void {
  begin();
  requireRegulator();
  const why = text(reason, "reason", 256);
  if (st.frozen) fail("ALREADY_FROZEN");
  st.frozen = true;
  st.frozenAt = now;
  st.frozenReason = why;
  commit();
  emit("ProgrammeFrozen", { by: env.caller, reason: why });
}

export function unfreeze(): void {
  begin();
  requireRegulator();
  if (!st.frozen) fail("PROGRAMME_NOT_FROZEN");
  st.pausedMs += span(st.frozenAt, now);
  st.frozen = false;
  st.frozenReason = "";
  commit();
  emit("ProgrammeUnfrozen", { by: env.caller, pausedMs: st.pausedMs });
}

/**
 * forceRefund(limit?, after?) -> { refunded, amount, skipped, next, done }: refunds up to `limit`
 * (1-60, default 50) live cards after card id `after`, each to its holder. The regulator may do
 * it once the programme is frozen or closing; the merchant or the institution once it is closed.
 * Lost cards are skipped (their holder may be compromised: reissue them first). Call again with
 * `after: next` until `done`.
 */
export function forceRefund(
  limit?: unknown,
  after?: unknown,
): { refunded: number; amount: bigint; skipped: number[]; next: number | null; done: boolean } {
  begin();
  if (hasRole(env.caller, "regulator")) {
    if (!st.frozen && st.closing === null) {
      fail("PROGRAMME_NOT_FROZEN", "the regulator forces refunds once the programme is frozen or closing");
    }
  } else if (isMerchant(env.caller) || env.caller === cfg.institution) {
    if (!closed()) fail("PROGRAMME_NOT_CLOSED");
  } else fail("NOT_REGULATOR");
  const n = orDefault(limit, 50, (v) => int(v, "limit", 1, MAX_REFUND_BATCH));
  const from = orDefault(after, 0, (v) => int(v, "after", 0, 1e10));
  const rows = storage.scan("l:", { start: `l:${pad(from + 1)}`, limit: n + 1 });
  const done = rows.length <= n;
  const cards: [number, bigint][] = [];
  const refunded: Card[] = [];
  const skipped: number[] = [];
  let amount = 0n;
  let last = from;
  for (const [k] of rows.slice(0, n)) {
    const { c, keys } = loadCard(Number(k.slice(2)));
    touch(c);
    if (c.status === "lost") skipped.push(c.id);
    else if (c.status === "active") {
      const paid = payRefund(c, 0n);
      cards.push([c.id, paid]);
      refunded.push(c);
      amount += paid;
    }
    saveCard(c, keys);
    last = c.id;
  }
  commit();
  const next = done ? null : last;
  // one event per card (its audit chain and its holder's), then the batch
  for (const [i, c] of refunded.entries())
    emit(
      "CardRefunded",
      { card: c.id, holder: c.holder, amount: cards[i]?.[1], fee: 0n, reason: "forced" },
      cardTopics(c),
    );
  emit("CardsRefunded", { by: env.caller, cards, skipped, amount, next });
  return { refunded: cards.length, amount, skipped, next, done };
}

// ---------------------------------------------------------------------------------------------
// The merchant's money and closure
// ---------------------------------------------------------------------------------------------

/** Settles up to `limit` cards: ended cooling-off periods first, then period accruals (round robin). */
function settleBatch(limit: number): { cooled: number; accrued: number; released: bigint } {
  const releasedBefore = st.released;
  let budget = limit;
  let cooled = 0;
  for (const [k] of storage.scan("hd:", { limit: budget })) {
    if (Number(k.slice(3, 18)) > now) break;
    const { c, keys } = loadCard(Number(k.slice(19)));
    touch(c);
    saveCard(c, keys);
    cooled += 1;
    budget -= 1;
  }
  let accrued = 0;
  if (budget > 0) {
    const rows = storage.scan("lp:", { start: `lp:${pad(st.cursor + 1)}`, limit: budget });
    for (const [k] of rows) {
      const { c, keys } = loadCard(Number(k.slice(3)));
      touch(c);
      saveCard(c, keys);
      st.cursor = c.id;
      accrued += 1;
    }
    if (rows.length < budget) st.cursor = 0;
  }
  return { cooled, accrued, released: st.released - releasedBefore };
}

/** settle(limit?) -> { cooled, accrued, released }: anyone may bring due money up to date (1-100, default 50). */
export function settle(limit?: unknown): { cooled: number; accrued: number; released: bigint } {
  begin();
  const r = settleBatch(orDefault(limit, 50, (v) => int(v, "limit", 1, MAX_BATCH)));
  commit();
  if (r.released > 0n) emit("Settled", r);
  return r;
}

/**
 * claim(settleLimit?) -> { amount, claimed }: the merchant is paid everything due (released and
 * not yet claimed), after settling up to `settleLimit` cards (0-100, default 20). Not while frozen.
 */
export function claim(settleLimit?: unknown): { amount: bigint; claimed: bigint } {
  begin();
  requireMerchant();
  if (st.frozen) fail("PROGRAMME_FROZEN", `the regulator froze the programme: ${st.frozenReason}`);
  const n = orDefault(settleLimit, 20, (v) => int(v, "settleLimit", 0, MAX_BATCH));
  if (n > 0) settleBatch(n);
  const amount = due();
  if (amount === 0n) fail("NOTHING_TO_CLAIM");
  st.claimed += amount;
  transfer(cfg.merchant, amount);
  commit();
  emit("MerchantPaid", { merchant: cfg.merchant, amount, claimed: st.claimed }, [cfg.merchant]);
  return { amount, claimed: st.claimed };
}

/** announceClosure(reason) -> { closesAt }: sales stop now; use goes on until the notice period ends. */
export function announceClosure(reason: unknown): { closesAt: number } {
  begin();
  requireMerchant();
  const why = text(reason, "reason", 256);
  if (st.closing !== null) fail("ALREADY_CLOSING");
  if (st.frozen) fail("PROGRAMME_FROZEN", `the regulator froze the programme: ${st.frozenReason}`);
  st.closing = { at: now, closesAt: now + cfg.closureNoticeDays * DAY_MS, reason: why };
  commit();
  emit("ClosureAnnounced", { closesAt: st.closing.closesAt, reason: why });
  return { closesAt: st.closing.closesAt };
}

/**
 * remind(limit?) -> { reminded }: anyone may send the "card about to expire" reminders that are
 * due (1-50 cards, default 20); a card whose term is paused is looked at again later.
 */
export function remind(limit?: unknown): { reminded: number } {
  begin();
  const n = orDefault(limit, 20, (v) => int(v, "limit", 1, 50));
  const window = cfg.reminders.expiryDays * DAY_MS;
  let reminded = 0;
  for (const [k] of storage.scan("e:", { limit: n })) {
    if (Number(k.slice(2, 17)) > now) break;
    const { c, keys } = loadCard(Number(k.slice(18)));
    touch(c);
    const rest = remainingMs(c);
    if (rest === null) c.remindAt = now + DAY_MS;
    else if (rest > window) c.remindAt = now + rest - window;
    else if (c.status === "active") {
      c.reminded = true;
      reminded += 1;
      emit("CardExpiring", { card: c.id, holder: c.holder, expiresAt: now + rest }, cardTopics(c));
    }
    saveCard(c, keys);
  }
  commit();
  return { reminded };
}

// ---------------------------------------------------------------------------------------------
// Views (queries)
// ---------------------------------------------------------------------------------------------

export interface CardView {
  id: number;
  product: number;
  kind: Kind;
  holder: string;
  /** active, lost, expired, refunded, finished or reissued, as of the block's time. */
  status: string;
  coolingOff: boolean;
  coolingOffUntil: number | null;
  paid: bigint;
  escrow: bigint;
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  /** Stored value left (fen), uses left, or ms of term left. */
  remaining: bigint;
  units: bigint;
  priceId: number;
  basis: string;
  transferable: boolean;
  purchasedAt: number;
  /** When the term ends if it runs on unpaused; null while paused (or over). */
  expiresAt: number | null;
  reissuedFrom: number | null;
  reissuedTo: number | null;
}

function cardView(c: Card): CardView {
  const status = expired(c) ? "expired" : c.status;
  const rest = remainingMs(c);
  return {
    id: c.id,
    product: c.product,
    kind: c.kind,
    holder: c.holder,
    status,
    coolingOff: c.cool,
    coolingOffUntil: c.cool ? c.coolEnd : null,
    paid: c.paid,
    escrow: c.escrow,
    consumed: c.consumed,
    released: c.released,
    refunded: c.refunded,
    remaining: c.kind === "period" ? BigInt(c.termMs - activeAt(c)) : c.units - c.used,
    units: c.units,
    priceId: c.priceId,
    basis: c.basis,
    transferable: !c.personal,
    purchasedAt: c.at,
    expiresAt: rest === null || rest <= 0 ? null : now + rest,
    reissuedFrom: c.from === 0 ? null : c.from,
    reissuedTo: c.to === 0 ? null : c.to,
  };
}

/** card(cardId) -> Card, brought up to the block's time (accrual, cooling-off) without writing. */
export function card(cardId: unknown): CardView {
  begin();
  const { c } = loadCard(cardId);
  touch(c);
  return cardView(c);
}

function page(after: unknown, limit: unknown, max: number): { start: number; limit: number } {
  return {
    start: orDefault(after, 0, (v) => int(v, "after", 0, 1e10)) + 1,
    limit: orDefault(limit, 20, (v) => int(v, "limit", 1, max)),
  };
}

/** cardsOf(holder, after?, limit?) -> Card[]: a consumer's cards by id (every status), 1-50 a page. */
export function cardsOf(holder: unknown, after?: unknown, limit?: unknown): CardView[] {
  begin();
  const a = address(holder, "holder");
  const p = page(after, limit, 50);
  return storage.scan(`h:${a}:`, { start: `h:${a}:${pad(p.start)}`, limit: p.limit }).map(([k]) => {
    const { c } = loadCard(Number(k.slice(k.length - 10)));
    touch(c);
    return cardView(c);
  });
}

export function product(productId: unknown): Product {
  begin();
  return loadProduct(productId);
}

/** products(after?, limit?, includeRetired?) -> Product[] by id, 1-100 a page. */
export function products(after?: unknown, limit?: unknown, includeRetired?: unknown): Product[] {
  begin();
  const p = page(after, limit, 100);
  return storage
    .scan("p:", { start: `p:${pad(p.start)}`, limit: p.limit })
    .map(([, v]) => parse<Product>(v))
    .filter((x) => includeRetired === true || !x.retired);
}

/** prices(productId) -> the per-person prices in force for a product (price records). */
export function prices(productId: unknown): unknown[] {
  begin();
  const product = loadProduct(productId);
  return storage
    .scan(`pp:${pad(product.id)}:`, { limit: 100 })
    .map(([, id]) => storage.getJson(`pr:${pad(Number(id))}`));
}

/** priceRecord(priceId): the immutable record a card's priceId names. */
export function priceRecord(priceId: unknown): unknown {
  begin();
  const rec = storage.getJson(`pr:${pad(int(priceId, "priceId", 1, 1e10))}`);
  if (rec === null) fail("PRICE_NOT_FOUND");
  return rec;
}

export function categoryOf(consumer: unknown): string | null {
  begin();
  return storage.get(`cat:${address(consumer, "consumer")}`);
}

/** quote(productId, consumer) -> { price, priceId, basis, transferable }: what `buy` will charge now. */
export function quote(productId: unknown, consumer: unknown): Record<string, unknown> {
  begin();
  const product = loadProduct(productId);
  if (product.open) {
    return { price: null, minAmount: product.minAmount, maxAmount: product.maxAmount, basis: "open" };
  }
  const q = priceFor(product, address(consumer, "consumer"));
  return { price: q.price, priceId: q.priceId, basis: q.basis, transferable: !q.personal };
}

/** programme() -> parameters, state and the merchant's, institution's and regulator-facing status. */
export function programme(): Record<string, unknown> {
  begin();
  return {
    ...cfg,
    status: st.frozen ? "frozen" : closed() ? "closed" : st.closing !== null ? "closing" : "active",
    frozen: st.frozen,
    frozenReason: st.frozen ? st.frozenReason : null,
    frozenAt: st.frozen ? st.frozenAt : null,
    pausedMs: pausedNow(),
    closing: st.closing,
    products: st.nextProduct - 1,
  };
}

/** escrowSummary() -> the programme's money: sold = escrowed + released + refunded; due = released - claimed. */
export function escrowSummary(): Record<string, unknown> {
  begin();
  return {
    balance: balanceOfSelf(),
    sold: st.sold,
    escrowed: st.escrow,
    consumed: st.consumed,
    released: st.released,
    refunded: st.refunded,
    claimed: st.claimed,
    due: due(),
    cards: st.cards,
    liveCards: st.live,
    refundedCards: st.refundedCards,
  };
}

/** fulfilment() -> consumed and refunded shares of what was sold, in basis points. */
export function fulfilment(): Record<string, unknown> {
  begin();
  return {
    sold: st.sold,
    consumed: st.consumed,
    refunded: st.refunded,
    consumedBps: ratioBps(st.consumed, st.sold),
    refundRateBps: ratioBps(st.refunded, st.sold),
    cards: st.cards,
    refundedCards: st.refundedCards,
    cardRefundRateBps: ratioBps(BigInt(st.refundedCards), BigInt(st.cards)),
    liveCards: st.live,
  };
}

function balanceOfSelf(): bigint {
  return balanceOf(env.self);
}

/**
 * checkInvariant(after?, limit?) -> the invariant as the chain holds it now: the programme's
 * e-CNY balance equals escrow + due, sold = escrowed + released + refunded, consumed <= sold; and
 * for a page of cards (ids after `after`, 1-200), each card's own accounts. Sum `page.escrow` over
 * all pages (same height) to compare with `escrowed`.
 */
export function checkInvariant(after?: unknown, limit?: unknown): Record<string, unknown> {
  begin();
  const balance = balanceOfSelf();
  const problems: string[] = [];
  if (balance !== st.escrow + due())
    problems.push(`balance ${balance} != escrowed ${st.escrow} + due ${due()}`);
  if (st.sold !== st.escrow + st.released + st.refunded) {
    problems.push(`sold ${st.sold} != escrowed + released + refunded`);
  }
  if (st.consumed > st.sold) problems.push("consumed > sold");
  if (st.claimed > st.released) problems.push("claimed > released");
  const p = page(after, limit, 200);
  let escrow = 0n;
  let cards = 0;
  let last: number | null = null;
  for (const [, v] of storage.scan("k:", { start: `k:${pad(p.start)}`, limit: p.limit })) {
    const c = parse<Card>(v);
    cards += 1;
    last = c.id;
    const bad = (rule: string) => problems.push(`card ${c.id}: ${rule}`);
    if (c.consumed > c.paid) bad("consumed > paid");
    if (c.used > c.units) bad("used > units");
    if (c.status === "reissued") {
      if (c.escrow !== 0n) bad("a reissued card holds escrow");
      continue;
    }
    escrow += c.escrow;
    if (c.paid !== c.escrow + c.released + c.refunded) bad("paid != escrow + released + refunded");
    const live = c.status === "active" || c.status === "lost";
    const expect = live ? c.hold + ceilDiv(c.base * (c.paid - c.consumed), c.paid) : 0n;
    if (c.escrow !== expect) bad(`escrow ${c.escrow} != ${expect}`);
    if (c.consumed !== consumedMoney(c.paid, c.units, c.used)) bad("consumed is not pro rata of use");
  }
  return {
    ok: problems.length === 0,
    problems: problems.slice(0, 20),
    balance,
    escrowed: st.escrow,
    due: due(),
    surplus: balance - st.escrow - due(),
    sold: st.sold,
    released: st.released,
    refunded: st.refunded,
    consumed: st.consumed,
    page: { cards, escrow, next: cards < p.limit ? null : last },
  };
}
