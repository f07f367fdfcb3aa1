import { CardBook } from "./cards.js";
import { type AuditEvent, comparePosition } from "./events.js";
import { type Risk, riskOf } from "./risk.js";
import { cstDay, cstMonth, inRange, type TimeRange } from "./time.js";
import { bps, field, intOf, strOf, toJson } from "./values.js";

/** A prepaid-card programme as its instantiation recorded it (InstanceCreated, ProgrammeOpened). */
export interface ProgrammeInfo {
  address: string;
  name: string;
  merchant: string;
  /** The institution that instantiated it. */
  institution: string;
}

/** One programme's material for a report. */
export interface ProgrammeInput {
  info: ProgrammeInfo;
  /** Product id -> kind (stored, count, period), from its ProductAdded events. */
  products: ReadonlyMap<number, string>;
  /**
   * The events of the programme's audit chain from the first at or after the range's start up to
   * the report's height (its own events, e-CNY in and out, complaints about it).
   */
  events: readonly AuditEvent[];
  /** The whole history (from each card's purchase) of every card with an event in the range. */
  cardEvents: readonly AuditEvent[];
}

export interface ReportInput {
  range: TimeRange;
  height: number;
  /** Movements at or above it are listed as large transactions (fen). */
  threshold: bigint;
  programmes: readonly ProgrammeInput[];
}

/** Sales, consumption, releases, refunds, claims over a range. */
export interface Figures {
  sold: bigint;
  cardsSold: number;
  consumed: bigint;
  /** Released to the merchant's due balance, as the programme's events report it. */
  released: bigint;
  refunded: bigint;
  cardsRefunded: number;
  forcedRefunds: bigint;
  refundFees: bigint;
  /** Paid out to the merchant (e-CNY). */
  claimed: bigint;
}

export interface ComplaintCounts {
  filed: number;
  /** Filed and not classified invalid or duplicate: what the risk level counts. */
  counted: number;
  serious: number;
  handled: number;
}

export interface MerchantReport extends Figures {
  merchant: string;
  programmes: string[];
  fulfilmentRateBps: number | null;
  refundRateBps: number | null;
  complaints: ComplaintCounts;
  frozen: boolean;
  closureAnnounced: boolean;
  riskFlags: number;
  risk: Risk;
}

export interface ProgrammeReport extends Figures {
  programme: string;
  name: string;
  merchant: string;
  institution: string;
  complaints: ComplaintCounts;
}

export interface LargeTransaction {
  time: number;
  height: number;
  txHash: string;
  kind: string;
  amount: bigint;
  from: string | null;
  to: string | null;
  programme: string;
  card: number | null;
}

export interface Report {
  from: number | null;
  to: number | null;
  height: number;
  threshold: bigint;
  merchants: MerchantReport[];
  programmes: ProgrammeReport[];
  byKind: ({ kind: string } & Figures)[];
  byDay: ({ day: string; merchant: string } & Figures)[];
  byMonth: ({ month: string; merchant: string } & Figures)[];
  largeTransactions: LargeTransaction[];
}

const zero = (): Figures => ({
  sold: 0n,
  cardsSold: 0,
  consumed: 0n,
  released: 0n,
  refunded: 0n,
  cardsRefunded: 0,
  forcedRefunds: 0n,
  refundFees: 0n,
  claimed: 0n,
});

function add(a: Figures, b: Partial<Figures>): void {
  for (const [k, v] of Object.entries(b) as [keyof Figures, bigint | number][])
    (a as unknown as Record<string, bigint | number>)[k] =
      typeof v === "bigint" ? (a[k] as bigint) + v : (a[k] as number) + (v as number);
}

const COMPLAINT_DISCOUNTED = new Set(["invalid", "duplicate"]);
const COMPLAINT_SERIOUS = new Set(["serious", "major"]);

/**
 * The supervision report of a range (数据统计): per programme, per merchant, per product kind,
 * per day and month (CST), with the fulfilment and refund rates, complaint counts and the risk
 * level (risk.ts), and the large movements of the programmes' escrow. Everything comes from
 * events, so an auditor recomputes it from an export's entries with this same function.
 */
export function buildReport(input: ReportInput): Report {
  const { range } = input;
  const programmes: ProgrammeReport[] = [];
  const merchants = new Map<string, MerchantReport>();
  const byKind = new Map<string, { kind: string } & Figures>();
  const byDay = new Map<string, { day: string; merchant: string } & Figures>();
  const byMonth = new Map<string, { month: string; merchant: string } & Figures>();
  const large: LargeTransaction[] = [];
  const list = [...input.programmes].sort((a, b) => (a.info.address < b.info.address ? -1 : 1));
  for (const p of list) {
    const { info } = p;
    const book = CardBook.replay(info.address, p.cardEvents);
    const figures = zero();
    const complaints = new Map<
      number,
      { filedInRange: boolean; classification: string; severity: string; handled: boolean }
    >();
    let frozen = false;
    let closure = false;
    let riskFlags = 0;
    const events = [...p.events].sort(comparePosition);
    for (const e of events) {
      const m = e.movement;
      if (m.kind === "complaint" && m.complaint !== undefined) {
        const c = complaints.get(m.complaint) ?? {
          filedInRange: false,
          classification: "",
          severity: "",
          handled: false,
        };
        const d = Array.isArray(e.data) ? e.data : [];
        if (e.name === "ComplaintFiled" && inRange(e.time, range)) c.filedInRange = true;
        if (e.name === "ComplaintClassified") {
          c.classification = strOf(d[2]) ?? "";
          c.severity = strOf(d[3]) ?? "";
        }
        if (e.name === "ComplaintHandled") c.handled = true;
        complaints.set(m.complaint, c);
        continue;
      }
      if (!inRange(e.time, range)) continue;
      if (e.emitter === info.address) {
        if (e.name === "ProgrammeFrozen") frozen = true;
        if (e.name === "ClosureAnnounced") closure = true;
        if (e.name === "RiskFlagged") riskFlags++;
      }
      const f: Partial<Figures> = {};
      let product: number | null = null;
      if (e.emitter === info.address) {
        const card = m.card !== undefined ? book.cards.get(m.card) : undefined;
        product = card?.product ?? null;
        switch (m.kind) {
          case "purchase":
            if (e.name === "CardSold") Object.assign(f, { sold: m.amount, cardsSold: 1 });
            break;
          case "consumption":
            Object.assign(f, {
              consumed: m.card !== undefined ? (book.stepOf(e, m.card)?.consumedDelta ?? 0n) : 0n,
              released: m.released ?? 0n,
            });
            break;
          case "release":
            Object.assign(f, { released: m.released ?? 0n });
            break;
          case "refund":
          case "forced-refund":
            Object.assign(f, {
              refunded: m.amount,
              cardsRefunded: 1,
              refundFees: m.fee ?? 0n,
              released: m.fee ?? 0n,
              ...(m.kind === "forced-refund" ? { forcedRefunds: m.amount } : {}),
            });
            break;
          case "claim":
            Object.assign(f, { claimed: m.amount });
            break;
        }
      }
      if (m.ecny && m.amount >= input.threshold && (m.from === info.address || m.to === info.address))
        large.push({
          time: e.time,
          height: e.height,
          txHash: e.txHash,
          kind: m.kind,
          amount: m.amount,
          from: m.from ?? null,
          to: m.to ?? null,
          programme: info.address,
          card: m.card ?? null,
        });
      if (Object.keys(f).length === 0) continue;
      add(figures, f);
      if (m.card !== undefined) {
        // figures of a card, by its product's kind (claims and settlements are the programme's)
        const kind = product === null ? "unknown" : (p.products.get(product) ?? "unknown");
        const k = byKind.get(kind) ?? { kind, ...zero() };
        add(k, f);
        byKind.set(kind, k);
      }
      const day = cstDay(e.time);
      const dk = `${day} ${info.merchant}`;
      const dr = byDay.get(dk) ?? { day, merchant: info.merchant, ...zero() };
      add(dr, f);
      byDay.set(dk, dr);
      const month = cstMonth(e.time);
      const mk = `${month} ${info.merchant}`;
      const mr = byMonth.get(mk) ?? { month, merchant: info.merchant, ...zero() };
      add(mr, f);
      byMonth.set(mk, mr);
    }
    const counts: ComplaintCounts = { filed: 0, counted: 0, serious: 0, handled: 0 };
    for (const c of complaints.values()) {
      if (!c.filedInRange) continue;
      counts.filed++;
      if (!COMPLAINT_DISCOUNTED.has(c.classification)) counts.counted++;
      if (COMPLAINT_SERIOUS.has(c.severity) && !COMPLAINT_DISCOUNTED.has(c.classification)) counts.serious++;
      if (c.handled) counts.handled++;
    }
    programmes.push({
      programme: info.address,
      name: info.name,
      merchant: info.merchant,
      institution: info.institution,
      ...figures,
      complaints: counts,
    });
    const mr =
      merchants.get(info.merchant) ??
      ({
        merchant: info.merchant,
        programmes: [],
        ...zero(),
        fulfilmentRateBps: null,
        refundRateBps: null,
        complaints: { filed: 0, counted: 0, serious: 0, handled: 0 },
        frozen: false,
        closureAnnounced: false,
        riskFlags: 0,
        risk: { score: 0, level: "low", rating: "A", reasons: [] },
      } as MerchantReport);
    mr.programmes.push(info.address);
    add(mr, figures);
    for (const k of ["filed", "counted", "serious", "handled"] as const) mr.complaints[k] += counts[k];
    mr.frozen ||= frozen;
    mr.closureAnnounced ||= closure;
    mr.riskFlags += riskFlags;
    merchants.set(info.merchant, mr);
  }
  for (const m of merchants.values()) {
    m.fulfilmentRateBps = bps(m.consumed, m.consumed + m.refunded);
    m.refundRateBps = bps(m.refunded, m.sold);
    m.risk = riskOf({
      refundRateBps: m.refundRateBps,
      fulfilmentRateBps: m.fulfilmentRateBps,
      complaintsCounted: m.complaints.counted,
      seriousComplaints: m.complaints.serious,
      frozen: m.frozen,
      forcedRefunds: m.forcedRefunds > 0n,
      closureAnnounced: m.closureAnnounced,
      riskFlags: m.riskFlags,
    });
  }
  const byKey = <T>(map: Map<string, T>) =>
    [...map.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, v]) => v);
  large.sort((a, b) => a.height - b.height || (a.txHash < b.txHash ? -1 : a.txHash > b.txHash ? 1 : 0));
  return {
    from: range.from,
    to: range.to,
    height: input.height,
    threshold: input.threshold,
    merchants: byKey(merchants),
    programmes,
    byKind: byKey(byKind),
    byDay: byKey(byDay),
    byMonth: byKey(byMonth),
    largeTransactions: large,
  };
}

export function reportJson(r: Report): Record<string, unknown> {
  return toJson(r) as Record<string, unknown>;
}

/** A programme's identity from its instantiation's events (InstanceCreated and ProgrammeOpened). */
export function programmeInfo(events: readonly AuditEvent[], address: string): ProgrammeInfo | undefined {
  const opened = events.find((e) => e.emitter === address && e.name === "ProgrammeOpened");
  if (!opened) return undefined;
  const created = events.find((e) => e.emitter === "templates" && e.name === "InstanceCreated");
  const merchant = strOf(field(opened.data, "merchant"));
  const name = strOf(field(opened.data, "name"));
  const fromCreated =
    Array.isArray(created?.data) && created.data[0] === address ? strOf(created.data[4]) : undefined;
  const institution = fromCreated ?? strOf(field(opened.data, "institution"));
  if (!merchant || !name || !institution) return undefined;
  return { address, name, merchant, institution };
}

/** A product's id and kind from its ProductAdded event. */
export function productOf(e: AuditEvent): { product: number; kind: string } | undefined {
  if (e.name !== "ProductAdded" || !e.emitter.startsWith("0x")) return undefined;
  const product = intOf(field(e.data, "product"));
  const kind = strOf(field(e.data, "kind"));
  return product === undefined || !kind ? undefined : { product, kind };
}
