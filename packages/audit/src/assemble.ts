import type { AuditEvent } from "./events.js";
import { inRange, type TimeRange } from "./time.js";

/**
 * What a report or a card trace needs besides the chain it is about, decided the same way by
 * the node that exports and by the verifier that checks: the chains of the cards a programme
 * touched in the range (each from its purchase), and of the cards a traced card was reissued
 * from.
 */

/** The cards of `programme` with an event in the range (a reissue names both cards). */
export function cardsInRange(programme: string, events: readonly AuditEvent[], range: TimeRange): number[] {
  const ids = new Set<number>();
  for (const e of events) {
    if (e.emitter !== programme || !inRange(e.time, range)) continue;
    if (e.movement.card !== undefined) ids.add(e.movement.card);
    if (e.movement.newCard !== undefined) ids.add(e.movement.newCard);
  }
  return [...ids].sort((a, b) => a - b);
}

/** The card `card` of `programme` was reissued from, per its chain's events (or null). */
export function reissuedFrom(programme: string, card: number, events: readonly AuditEvent[]): number | null {
  const e = events.find(
    (x) => x.emitter === programme && x.movement.kind === "reissue" && x.movement.newCard === card,
  );
  return e?.movement.card ?? null;
}
