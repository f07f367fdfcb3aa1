/**
 * Property-based test of the prepaid-card template: a seeded random walk over every operation and
 * actor (wrong ones included) on the SDK harness, which runs the chain's own VM. After every step
 * it checks, from the contract's raw storage and the harness's e-CNY balances (not from the
 * contract's own summary):
 *
 *   - the contract's balance = Σ escrow of live cards + what is due to the merchant (released - claimed)
 *   - total e-CNY is conserved across consumers, merchant and contract
 *   - every card: consumed <= paid, used <= units, paid = escrow + released + refunded, escrow as the
 *     rules say (its escrowed share of the unconsumed part, plus the cooling-off hold), consumed pro rata
 *   - programme totals = sums over cards
 *   - each consumer's balance = what it started with - what it paid + the refunds reported to it;
 *     the merchant's = what its claims reported
 *   - a refused call changed nothing, and a wrong actor is always refused with the right code
 *
 * and every 100 steps (and at the end) the on-chain `checkInvariant` query over every page. Each
 * step re-reads the cards the step wrote (the harness's storage records the keys) against running
 * sums; every 100 steps every card is re-read and the sums recounted, so a long walk stays linear.
 */
import type { ContractHarness } from "@custos/contract-sdk/harness";
import { ceilDiv, consumedMoney } from "../src/rules.js";
import { A, DAY, harness, type Receipt } from "./programme.js";

/** sfc32: a small, fast, seeded PRNG (no dependency); the same seed gives the same walk. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  fen(lo: bigint, hi: bigint): bigint {
    return lo + BigInt(Math.floor(this.next() * Number(hi - lo + 1n)));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
}

interface StoredCard {
  id: number;
  holder: string;
  kind: string;
  status: string;
  paid: bigint;
  units: bigint;
  used: bigint;
  base: bigint;
  hold: bigint;
  escrow: bigint;
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  cool: boolean;
  personal: boolean;
}

interface StoredState {
  frozen: boolean;
  closing: { closesAt: number } | null;
  nextCard: number;
  nextProduct: number;
  sold: bigint;
  escrow: bigint;
  consumed: bigint;
  released: bigint;
  refunded: bigint;
  claimed: bigint;
  live: number;
}

const revive = (_k: string, x: unknown) =>
  x !== null &&
  typeof x === "object" &&
  typeof (x as { $n?: unknown }).$n === "string" &&
  Object.keys(x).length === 1
    ? BigInt((x as { $n: string }).$n)
    : x;
const read = <T>(h: ContractHarness, key: string): T | undefined => {
  const v = h.storage.get(key);
  return v === undefined ? undefined : (JSON.parse(v, revive) as T);
};
const cardOf = (h: ContractHarness, id: number) => read<StoredCard>(h, `k:${String(id).padStart(10, "0")}`);
const stateOf = (h: ContractHarness) => read<StoredState>(h, "st") as StoredState;

export interface PropertyOptions {
  seed: number;
  steps: number;
  /** Another bundle of the contract (the negative controls patch one). */
  source?: string;
}

export interface PropertyResult {
  /** The first broken property, or null. */
  violation: string | null;
  step: number;
  calls: number;
  succeeded: number;
  /** Successful calls per method, refusals per code. */
  byMethod: Record<string, number>;
  refusals: Record<string, number>;
  cards: number;
  trail: string[];
}

class Violation extends Error {}

const CONSUMERS = A.consumers;
const EVERYONE = [
  A.institution,
  A.merchant,
  A.otherMerchant,
  A.regulator,
  A.auditor,
  A.outsider,
  ...CONSUMERS,
];

/** One random programme and `steps` random moves on it; returns the first violation found. */
export async function runProperty(o: PropertyOptions): Promise<PropertyResult> {
  const rng = new Rng(o.seed);
  const h = await harness({ source: o.source, wallet: 50_000_000n });
  const share = rng.chance(0.4) ? 10000 : rng.between(4000, 10000);
  const params = {
    merchant: A.merchant,
    name: `programme ${o.seed}`,
    escrowShareBps: share,
    cardCap: rng.pick([200_000n, 500_000n]),
    maxTermDays: rng.pick([60, 120, 365]),
    coolingOffDays: rng.pick([0, 3, 7]),
    closureNoticeDays: rng.pick([0, 5, 30]),
    refund: { afterCoolingOff: rng.chance(0.5), feeBps: rng.pick([0, 300, 2000]) },
    reminders: { lowBalance: 10_000n, usesLeft: 2, expiryDays: 5 },
    risk: { cardUsesPerDay: rng.between(2, 6), programmeUsesPerHour: rng.between(5, 30) },
  };
  const deployed = await h.deploy(params, { caller: A.institution });
  if (!deployed.ok) throw new Error(`deploy: ${deployed.error?.code} ${deployed.error?.message}`);

  for (const spec of [
    { name: "gift", kind: "stored", faceValue: 100_000n, price: 98_000n, validDays: 60 },
    { name: "top-up", kind: "stored", open: true, minAmount: 100n, maxAmount: 150_000n },
    { name: "ten", kind: "count", uses: 10, price: 45_000n, validDays: 45 },
    { name: "month", kind: "period", period: "month", price: 30_000n, usesPerDay: 1 },
  ]) {
    const r = await h.call("addProduct", [spec], { caller: A.merchant });
    if (!r.ok) throw new Error(`addProduct: ${r.error?.code} ${r.error?.message}`);
  }
  const start = new Map(h.balances);
  const total = [...h.balances.values()].reduce((x, y) => x + y, 0n);
  const expected = new Map(start); // what each account should hold, from reported outputs and events
  const credit = (a: string, n: bigint) => expected.set(a, (expected.get(a) ?? 0n) + n);
  const result: PropertyResult = {
    violation: null,
    step: 0,
    calls: 0,
    succeeded: 0,
    byMethod: {},
    refusals: {},
    cards: 0,
    trail: [],
  };
  const fail = (what: string): never => {
    throw new Violation(what);
  };

  // every key the harness writes or deletes, so each step checks what changed (and a refusal that
  // wrote anything is caught) without copying the whole storage
  const touched = new Set<string>();
  const store = h.storage;
  const set = store.set.bind(store);
  const del = store.delete.bind(store);
  store.set = (k: string, v: string) => {
    touched.add(k);
    return set(k, v);
  };
  store.delete = (k: string) => {
    touched.add(k);
    return del(k);
  };
  const live = new Set<number>();

  const call = async (method: string, args: unknown[], caller: string, value = 0n): Promise<Receipt> => {
    const writesBefore = touched.size;
    const balances = new Map(h.balances);
    const r = await h.call(method, args, { caller, value });
    result.calls += 1;
    result.trail.push(
      `${method}(${JSON.stringify(args, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}) by ${caller.slice(-4)}` +
        `${value ? ` +${value}` : ""} -> ${r.ok ? "ok" : r.error?.code}`,
    );
    if (result.trail.length > 12) result.trail.shift();
    if (r.ok) {
      result.succeeded += 1;
      result.byMethod[method] = (result.byMethod[method] ?? 0) + 1;
    } else {
      const code = r.error?.code as string;
      result.refusals[code] = (result.refusals[code] ?? 0) + 1;
      // a refusal changes nothing: no storage, no e-CNY
      if (touched.size !== writesBefore) fail(`${method} failed (${r.error?.code}) but changed storage`);
      if (!sameMap(balances, h.balances)) fail(`${method} failed (${r.error?.code}) but moved e-CNY`);
      if (!/^[A-Z][A-Z0-9_]*$/.test(r.error?.code ?? "")) fail(`${method}: error code ${r.error?.code}`);
      if (r.error?.code === "CONTRACT_EXCEPTION" || r.error?.code === "OUT_OF_GAS") {
        fail(`${method} crashed: ${r.error.code} ${r.error.message}`);
      }
    }
    return r;
  };
  /** A wrong actor's call: it must be refused, with one of `codes`. */
  const refused = async (method: string, args: unknown[], caller: string, codes: string[], value = 0n) => {
    const r = await call(method, args, caller, value);
    if (r.ok) fail(`${method} by ${caller} should have been refused`);
    if (!codes.includes(r.error?.code as string))
      fail(`${method} by ${caller}: ${r.error?.code}, want ${codes}`);
  };

  /** Mostly a live card, sometimes any card, now and then one that does not exist. */
  const anyCard = () => {
    const n = stateOf(h).nextCard - 1;
    if (rng.chance(0.05) || n === 0) return n + 1 + rng.int(3);
    if (rng.chance(0.8) && live.size > 0) return rng.pick([...live]);
    return 1 + rng.int(n);
  };
  const holderOf = (id: number) => cardOf(h, id)?.holder;
  const other = (not: string[]) => rng.pick(EVERYONE.filter((a) => !not.includes(a)));
  const anyProduct = () => 1 + rng.int(Math.max(1, stateOf(h).nextProduct - 1) + 1);

  const moves: [number, () => Promise<void>][] = [
    [
      3,
      async () => {
        const kind = rng.pick(["stored", "stored-open", "count", "period"]);
        const spec: Record<string, unknown> =
          kind === "stored"
            ? { kind, faceValue: rng.fen(1_000n, 300_000n), validDays: rng.between(10, 120) }
            : kind === "stored-open"
              ? { kind: "stored", open: true, minAmount: 100n, maxAmount: rng.fen(1_000n, 300_000n) }
              : kind === "count"
                ? {
                    kind,
                    uses: rng.between(1, 12),
                    price: rng.fen(1n, 300_000n),
                    validDays: rng.between(5, 120),
                  }
                : {
                    kind,
                    period: rng.pick(["week", "month", "quarter"]),
                    periods: rng.between(1, 2),
                    price: rng.fen(1n, 300_000n),
                    usesPerDay: rng.between(0, 2),
                  };
        if (kind === "stored" && rng.chance(0.5)) spec.price = (spec.faceValue as bigint) - rng.fen(0n, 500n);
        spec.name = `p${rng.int(1000)}`;
        if (rng.chance(0.15)) await refused("addProduct", [spec], other([A.merchant]), ["NOT_MERCHANT"]);
        else await call("addProduct", [spec], A.merchant);
      },
    ],
    [
      1,
      async () => {
        if (rng.chance(0.2))
          await refused("retireProduct", [anyProduct()], other([A.merchant]), ["NOT_MERCHANT"]);
        else if (rng.chance(0.3)) await call("retireProduct", [anyProduct()], A.merchant);
      },
    ],
    [
      2,
      async () => {
        const target = rng.chance(0.5)
          ? { consumer: rng.pick(CONSUMERS) }
          : { category: rng.pick(["student", "senior"]) };
        const price = rng.fen(1n, 300_000n);
        if (rng.chance(0.15))
          await refused("setPrice", [anyProduct(), target, price], other([A.merchant]), ["NOT_MERCHANT"]);
        else if (rng.chance(0.2)) {
          // mostly a price in force, now and then one that is not
          const set = [...h.storage.keys()].filter((k) => k.startsWith("pp:"));
          if (set.length === 0 || rng.chance(0.2))
            await call("clearPrice", [anyProduct(), target], A.merchant);
          else {
            const [, product, kind, who] = rng.pick(set).split(":") as [string, string, string, string];
            const t = kind === "a" ? { consumer: who } : { category: who };
            await call("clearPrice", [Number(product), t], A.merchant);
          }
        } else if (rng.chance(0.3)) {
          await call("setCategory", [rng.pick(CONSUMERS), rng.pick(["student", "senior", null])], A.merchant);
        } else await call("setPrice", [anyProduct(), target, price], A.merchant);
      },
    ],
    [
      12,
      async () => {
        const buyer = rng.chance(0.9) ? rng.pick(CONSUMERS) : other(CONSUMERS);
        const productId = anyProduct();
        const p = read<{ open: boolean; maxAmount: bigint }>(h, `p:${String(productId).padStart(10, "0")}`);
        let amount: bigint | undefined;
        let price: bigint | undefined;
        if (p?.open) {
          amount = rng.fen(50n, p.maxAmount + 100n);
          price = amount;
        } else if (p !== undefined) {
          try {
            price = ((await h.query("quote", [productId, buyer])) as { price: bigint }).price;
          } catch {
            price = undefined;
          }
        }
        const right = price !== undefined && rng.chance(0.85);
        const value = right ? (price as bigint) : rng.fen(0n, 300_000n);
        const args = amount === undefined ? [productId] : [productId, amount];
        const r = await call("buy", args, buyer, value);
        if (r.ok) {
          if (!CONSUMERS.includes(buyer)) fail(`a card was sold to ${buyer}, not a consumer`);
          if (value !== price) fail(`buy took ${value} fen for a ${price} fen card`);
          credit(buyer, -value);
          credit(h.self, value);
        }
      },
    ],
    [
      16,
      async () => {
        const id = anyCard();
        const holder = holderOf(id);
        const c = cardOf(h, id);
        const quantity =
          c?.kind === "stored"
            ? rng.chance(0.1)
              ? c.units - c.used + 1n
              : rng.fen(1n, c.units - c.used > 0n ? c.units - c.used : 1n)
            : c?.kind === "count"
              ? rng.between(1, 3)
              : undefined;
        const args = quantity === undefined ? [id] : [id, quantity];
        if (holder !== undefined && rng.chance(0.15))
          await refused("consume", args, other([holder]), ["NOT_HOLDER"]);
        else await call("consume", args, holder ?? rng.pick(CONSUMERS));
      },
    ],
    [
      5,
      async () => {
        const id = anyCard();
        const holder = holderOf(id);
        if (holder !== undefined && rng.chance(0.2)) {
          await refused("refund", [id], other([holder]), ["NOT_HOLDER"]);
          return;
        }
        const caller = holder ?? rng.pick(CONSUMERS);
        const r = await call("refund", [id], caller);
        if (r.ok) {
          const out = r.output as { amount: bigint };
          credit(caller, out.amount);
          credit(h.self, -out.amount);
        }
      },
    ],
    [
      3,
      async () => {
        const id = anyCard();
        const holder = holderOf(id);
        const to = rng.chance(0.8) ? rng.pick(CONSUMERS) : other(CONSUMERS);
        if (holder !== undefined && rng.chance(0.2)) {
          await refused("transferCard", [id, to], other([holder]), ["NOT_HOLDER"]);
        } else {
          const r = await call("transferCard", [id, to], holder ?? rng.pick(CONSUMERS));
          if (r.ok && (!CONSUMERS.includes(to) || cardOf(h, id)?.personal))
            fail(`card ${id} moved where it may not`);
        }
      },
    ],
    [
      3,
      async () => {
        const id = anyCard();
        const holder = holderOf(id);
        const method = rng.chance(0.5) ? "reportLost" : "cancelLoss";
        if (holder !== undefined && rng.chance(0.2)) {
          await refused(method, [id], other([holder, A.regulator]), ["NOT_HOLDER"]);
        } else await call(method, [id], rng.chance(0.8) ? (holder ?? A.regulator) : A.regulator);
      },
    ],
    [
      2,
      async () => {
        const id = anyCard();
        const to = rng.chance(0.5) ? [] : [rng.pick(CONSUMERS)];
        if (rng.chance(0.2)) await refused("reissue", [id, ...to], other([A.regulator]), ["NOT_REGULATOR"]);
        else await call("reissue", [id, ...to], A.regulator);
      },
    ],
    [
      2,
      async () => {
        const frozen = stateOf(h).frozen;
        const method = frozen ? "unfreeze" : "freeze";
        const args = frozen ? [] : ["inspection"];
        if (rng.chance(0.2)) await refused(method, args, other([A.regulator]), ["NOT_REGULATOR"]);
        else if (frozen ? rng.chance(0.8) : rng.chance(0.25)) await call(method, args, A.regulator);
      },
    ],
    [
      3,
      async () => {
        const caller = rng.pick([
          A.regulator,
          A.regulator,
          A.merchant,
          A.institution,
          rng.pick(CONSUMERS),
          A.auditor,
        ]);
        const limit = rng.between(1, 20);
        const after = rng.chance(0.7) ? 0 : rng.int(stateOf(h).nextCard);
        if ([A.auditor, ...CONSUMERS].includes(caller)) {
          await refused("forceRefund", [limit, after], caller, ["NOT_REGULATOR"]);
          return;
        }
        const r = await call("forceRefund", [limit, after], caller);
        if (r.ok) {
          const out = r.output as { amount: bigint; refunded: number };
          const ev = r.events.find((e) => e.name === "CardsRefunded")?.data as { cards: [number, bigint][] };
          let sum = 0n;
          for (const [id, amount] of ev.cards) {
            credit(holderOf(id) as string, amount);
            sum += amount;
          }
          if (sum !== out.amount || ev.cards.length !== out.refunded)
            fail("forceRefund's event and output differ");
          if (ev.cards.length > limit) fail("forceRefund went past its limit");
          credit(h.self, -sum);
        }
      },
    ],
    [
      0.3,
      async () => {
        // closing ends the programme's business: only in the last quarter of the walk
        if (rng.chance(0.3)) await refused("announceClosure", ["bye"], other([A.merchant]), ["NOT_MERCHANT"]);
        else if (result.step > o.steps * 0.75) await call("announceClosure", ["closing down"], A.merchant);
      },
    ],
    [
      4,
      async () => {
        if (rng.chance(0.2)) {
          await refused("claim", [], other([A.merchant]), ["NOT_MERCHANT"]);
          return;
        }
        const r = await call("claim", [rng.between(0, 30)], A.merchant);
        if (r.ok) {
          const amount = (r.output as { amount: bigint }).amount;
          credit(A.merchant, amount);
          credit(h.self, -amount);
        }
      },
    ],
    [
      2,
      async () => {
        await call(rng.chance(0.5) ? "settle" : "remind", [rng.between(1, 30)], rng.pick(EVERYONE));
      },
    ],
    [
      10,
      async () => {
        h.advance(rng.pick([60_000, 600_000, 3_600_000, 6 * 3_600_000, DAY, DAY, 2 * DAY, 8 * DAY]));
      },
    ],
  ];
  const weight = moves.reduce((x, [w]) => x + w, 0);

  /** What a card adds to the programme's totals, and its own rules checked. */
  const contribution = (id: number) => {
    const c = cardOf(h, id);
    if (c === undefined) return fail(`card ${id} is missing`);
    const bad = (what: string) => fail(`card ${id}: ${what}`);
    if (c.consumed > c.paid) bad(`consumed ${c.consumed} > paid ${c.paid}`);
    if (c.used > c.units) bad("used > units");
    if (c.status === "reissued") {
      if (c.escrow !== 0n) bad("a reissued card holds escrow");
      return { escrow: 0n, sold: 0n, consumed: 0n, live: 0 };
    }
    if (c.paid !== c.escrow + c.released + c.refunded) bad("paid != escrow + released + refunded");
    if (c.consumed !== consumedMoney(c.paid, c.units, c.used)) bad("consumed is not pro rata");
    const isLive = c.status === "active" || c.status === "lost";
    const want = isLive ? (c.cool ? c.hold : 0n) + ceilDiv(c.base * (c.paid - c.consumed), c.paid) : 0n;
    if (c.escrow !== want) bad(`escrow ${c.escrow}, the rules say ${want}`);
    if (c.status === "refunded" && c.refunded === 0n) bad("refunded nothing");
    return { escrow: c.escrow, sold: c.paid, consumed: c.consumed, live: isLive ? 1 : 0 };
  };
  const parts = new Map<number, ReturnType<typeof contribution>>();
  const sums = { escrow: 0n, sold: 0n, consumed: 0n, live: 0 };
  const add = (p: ReturnType<typeof contribution>, sign: 1n | -1n) => {
    sums.escrow += sign * p.escrow;
    sums.sold += sign * p.sold;
    sums.consumed += sign * p.consumed;
    sums.live += Number(sign) * p.live;
  };

  const check = async (full: boolean) => {
    const s = stateOf(h);
    // the cards this step changed (every card, on a full check), against the running sums
    const ids = new Set<number>();
    for (const k of touched) {
      if (k.startsWith("k:")) ids.add(Number(k.slice(2)));
      if (k.startsWith("l:")) {
        const id = Number(k.slice(2));
        if (h.storage.has(k)) live.add(id);
        else live.delete(id);
      }
    }
    touched.clear();
    if (full) for (let id = 1; id < s.nextCard; id++) ids.add(id);
    for (const id of ids) {
      const old = parts.get(id);
      if (old !== undefined) add(old, -1n);
      const now = contribution(id);
      parts.set(id, now);
      add(now, 1n);
    }
    if (full) {
      if (parts.size !== s.nextCard - 1) fail(`${parts.size} cards seen, ${s.nextCard - 1} sold`);
      const keys = [...h.storage.keys()].filter((k) => k.startsWith("l:")).map((k) => Number(k.slice(2)));
      if (keys.length !== live.size || keys.some((id) => !live.has(id))) fail("the live-card index drifted");
    }
    const balance = h.balanceOf(h.self);
    const due = s.released - s.claimed;
    if (balance !== sums.escrow + due)
      fail(`balance ${balance} != Σ card escrow ${sums.escrow} + due ${due}`);
    if (sums.escrow !== s.escrow) fail(`programme escrow ${s.escrow} != Σ card escrow ${sums.escrow}`);
    if (sums.sold !== s.sold || sums.consumed !== s.consumed) fail("programme sold/consumed != Σ cards");
    if (sums.live !== s.live || live.size !== s.live) fail(`live cards ${s.live} != ${sums.live}`);
    if (due < 0n) fail("claimed more than released");
    const now = [...h.balances.values()].reduce((x, y) => x + y, 0n);
    if (now !== total) fail(`e-CNY not conserved: ${now} != ${total}`);
    for (const [a, want] of expected) {
      if (h.balanceOf(a) !== want) fail(`${a} holds ${h.balanceOf(a)}, the reported flows say ${want}`);
    }
    if (h.balanceOf(A.merchant) !== s.claimed) fail("the merchant holds other than what it claimed");
    if (full) {
      let pageEscrow = 0n;
      let after = 0;
      for (;;) {
        const inv = (await h.query("checkInvariant", [after, 200])) as {
          ok: boolean;
          problems: string[];
          page: { escrow: bigint; next: number | null };
        };
        if (!inv.ok) fail(`checkInvariant: ${inv.problems.join("; ")}`);
        pageEscrow += inv.page.escrow;
        if (inv.page.next === null) break;
        after = inv.page.next;
      }
      if (pageEscrow !== s.escrow) fail("checkInvariant's pages do not add up to the programme's escrow");
    }
  };

  try {
    for (result.step = 1; result.step <= o.steps; result.step++) {
      let x = rng.next() * weight;
      for (const [w, move] of moves) {
        x -= w;
        if (x < 0) {
          await move();
          break;
        }
      }
      await check(result.step % 100 === 0 || result.step === o.steps);
    }
    result.step = o.steps;
  } catch (err) {
    if (!(err instanceof Violation)) throw err;
    result.violation = err.message;
  }
  result.cards = stateOf(h).nextCard - 1;
  return result;
}

function sameMap<K, V>(a: Map<K, V>, b: Map<K, V>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
