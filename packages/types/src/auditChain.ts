import { encode } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { stateKey } from "./stateKeys.js";

/**
 * Audit chains (consensus rule): every event a successful transaction emits extends one hash
 * chain per subject it is about, so that a trace of a subject (an account, a contract, a card)
 * can be shown complete, offline:
 *
 *   subjects(event) = [emitter, if it is a VM contract's address] ++ event.topics (duplicates dropped)
 *   digest(event)   = SM3(encode([txHash, index in the receipt, emitter, name, data, topics]))
 *   head'(S)        = SM3(head(S) || digest(event))      (head(S) starts as 32 zero bytes)
 *
 * The new head of each subject is recorded in the event (`heads`, in subject order), so each
 * link is certified with its receipt; the current head of S lives in state under the system
 * key space "audit", key "h:" + S, so the end of a chain is provable with a state proof. An
 * exported trace is complete when its entries link from an anchor (the entry before the range,
 * or the zero head) to the head the state proof shows, with nothing left out in between.
 */
export const AUDIT_CONTRACT = "audit";
export const ZERO_HEAD = new Uint8Array(32);

/** What an event may be about: an address, or a `kind:id` name (card:12, proposal:3). */
export const SUBJECT_RE = /^(0x[0-9a-f]{40}|[a-z][a-z0-9]{0,15}:[A-Za-z0-9_.:@-]{1,64})$/;
export const MAX_TOPICS = 4;

export function eventSubjects(e: { emitter: string; topics: readonly string[] }): string[] {
  const out: string[] = [];
  if (e.emitter.startsWith("0x")) out.push(e.emitter);
  for (const t of e.topics) if (!out.includes(t)) out.push(t);
  return out;
}

export function eventDigest(
  txHash: Uint8Array,
  index: number,
  e: { emitter: string; name: string; data: Uint8Array; topics: readonly string[] },
): Uint8Array {
  return sm3(encode([txHash, index, e.emitter, e.name, e.data, e.topics]));
}

export function nextHead(prev: Uint8Array, digest: Uint8Array): Uint8Array {
  return sm3(prev, digest);
}

/** The state key (full, as the state tree hashes it) of subject S's chain head. */
export function auditHeadKey(subject: string): Uint8Array {
  return stateKey(AUDIT_CONTRACT, `h:${subject}`);
}
