import { encode } from "@custos/codec";
import { sm3 } from "@custos/crypto";

/** One write of a block's execution, by full LevelDB key. */
export interface StateWrite {
  key: Uint8Array;
  /** null deletes */
  value: Uint8Array | null;
}

/** Writes keyed by the hex of their key, so that a later write to a key replaces an earlier one. */
export type WriteSet = Map<string, StateWrite>;

/**
 * The state-root rule: stateRoot = SM3(prevStateRoot || SM3(encoded write set sorted by key)),
 * the write set encoded as an array of [key, value or null]. Hex order of keys is byte order, so
 * sorting the hex strings sorts the keys. A header's stateRoot chains every block's writes from
 * genesis: whoever re-executes the blocks from genesis can check it; it does not prove a single
 * state entry on its own.
 */
export function nextStateRoot(prev: Uint8Array, writes: WriteSet): Uint8Array {
  const entries = [...writes.keys()].sort().map((k) => {
    const w = writes.get(k) as StateWrite;
    return [w.key, w.value];
  });
  return sm3(prev, sm3(encode(entries)));
}
