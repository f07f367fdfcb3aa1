import { type AuditEvent, comparePosition, positionKey } from "./events.js";

/** A prepaid card as its own events tell it (contracts/prepaid-card README, "Events"). */
export interface CardRecord {
  programme: string;
  card: number;
  product: number | null;
  holder: string | null;
  /** What was paid for it (fen). */
  paid: bigint;
  /** Its consumed value so far (what the last CardConsumed reported). */
  consumed: bigint;
  /** Paid back to its holder. */
  refunded: bigint;
  /** Refund fees (to the merchant). */
  fees: bigint;
  status: "active" | "refunded" | "reissued";
  /** A reissued card's predecessor, and its successor. */
  reissuedFrom: number | null;
  reissuedTo: number | null;
}

/**
 * The card's open value: paid, less what was consumed, refunded or charged as a refund fee (for a
 * live card, what it is still worth; once refunded, what the holder paid and neither used nor got
 * back: the share the programme never escrowed). A reissued card's value moved to its successor.
 */
export function openValue(c: CardRecord): bigint {
  return c.status === "reissued" ? 0n : c.paid - c.consumed - c.refunded - c.fees;
}

/** What one event did to one card: the change of its consumed value and of its open value. */
export interface CardStep {
  card: number;
  consumedDelta: bigint;
  valueDelta: bigint;
  valueAfter: bigint;
}

/**
 * Replays the card events of one programme (in chain order; an event may come twice when it is
 * in two cards' chains: it counts once) and remembers what each event did. CardConsumed carries
 * the card's cumulative consumed value, so a use's own value is the difference to the card's
 * previous one; a reissued card starts where its predecessor stood.
 */
export class CardBook {
  readonly cards = new Map<number, CardRecord>();
  readonly steps = new Map<string, CardStep[]>();

  constructor(readonly programme: string) {}

  static replay(programme: string, events: Iterable<AuditEvent>): CardBook {
    const book = new CardBook(programme);
    const seen = new Set<string>();
    const list = [...events].filter((e) => e.emitter === programme).sort(comparePosition);
    for (const e of list) {
      const k = positionKey(e);
      if (seen.has(k)) continue;
      seen.add(k);
      book.apply(e);
    }
    return book;
  }

  private record(id: number): CardRecord {
    let c = this.cards.get(id);
    if (!c) {
      c = {
        programme: this.programme,
        card: id,
        product: null,
        holder: null,
        paid: 0n,
        consumed: 0n,
        refunded: 0n,
        fees: 0n,
        status: "active",
        reissuedFrom: null,
        reissuedTo: null,
      };
      this.cards.set(id, c);
    }
    return c;
  }

  private step(e: AuditEvent, c: CardRecord, before: bigint, consumedDelta = 0n): void {
    const s: CardStep = {
      card: c.card,
      consumedDelta,
      valueDelta: openValue(c) - before,
      valueAfter: openValue(c),
    };
    const k = positionKey(e);
    this.steps.set(k, [...(this.steps.get(k) ?? []), s]);
  }

  apply(e: AuditEvent): void {
    const m = e.movement;
    if (m.card === undefined) return;
    const c = this.record(m.card);
    const before = openValue(c);
    switch (m.kind) {
      case "purchase":
        if (e.name !== "CardSold") return;
        c.paid = m.amount;
        c.product = m.product ?? null;
        c.holder = m.holder ?? null;
        this.step(e, c, before);
        return;
      case "consumption": {
        const total = m.consumedTotal ?? c.consumed;
        const delta = total - c.consumed;
        c.consumed = total;
        this.step(e, c, before, delta);
        return;
      }
      case "refund":
      case "forced-refund":
        c.refunded += m.amount;
        c.fees += m.fee ?? 0n;
        c.status = "refunded";
        this.step(e, c, before);
        return;
      case "card-transfer":
        c.holder = m.to ?? c.holder;
        this.step(e, c, before);
        return;
      case "reissue": {
        if (m.newCard === undefined) return;
        const n = this.record(m.newCard);
        const nBefore = openValue(n);
        Object.assign(n, {
          product: c.product,
          holder: m.holder ?? c.holder,
          paid: c.paid,
          consumed: c.consumed,
          refunded: c.refunded,
          fees: c.fees,
          status: "active",
          reissuedFrom: c.card,
        });
        c.status = "reissued";
        c.reissuedTo = n.card;
        this.step(e, c, before);
        this.step(e, n, nBefore);
        return;
      }
      default:
        this.step(e, c, before);
    }
  }

  /** What `e` did to `card`, if it touched it. */
  stepOf(e: AuditEvent, card: number): CardStep | undefined {
    return this.steps.get(positionKey(e))?.find((s) => s.card === card);
  }
}
