import {
  AUDIT_CONTRACT,
  auditHeadKey,
  type ContractEvent,
  eventDigest,
  eventSubjects,
  nextHead,
  ZERO_HEAD,
} from "@custos/types";
import type { Overlay } from "../state/overlay.js";

export { AUDIT_CONTRACT };

/**
 * Extends the audit chains of a successful transaction's events (the rule is in
 * @custos/types auditChain.ts): each event gets the new head of each of its subjects, and the
 * heads go into the transaction's state writes, so they commit (or not) with it.
 */
export async function chainEvents(
  events: ContractEvent[],
  txHash: Uint8Array,
  state: Overlay,
): Promise<void> {
  const heads = new Map<string, Uint8Array>();
  for (const [i, e] of events.entries()) {
    const digest = eventDigest(txHash, i, e);
    e.heads = [];
    for (const subject of eventSubjects(e)) {
      const prev = heads.get(subject) ?? (await state.get(auditHeadKey(subject))) ?? ZERO_HEAD;
      const head = nextHead(prev, digest);
      heads.set(subject, head);
      e.heads.push(head);
    }
  }
  for (const [subject, head] of heads) state.set(auditHeadKey(subject), head);
}
