import { encode } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { toHex } from "@custos/utils";

/** Reads state by full LevelDB key; undefined when absent. */
export interface StateReader {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
}

export interface StateWrite {
  key: Uint8Array;
  /** null deletes */
  value: Uint8Array | null;
}

/** Writes keyed by the hex of their key, so that a later write to a key replaces an earlier one. */
export type WriteSet = Map<string, StateWrite>;

/**
 * Writes layered over a reader. A transaction runs on an overlay over the block's overlay:
 * success merges it down, failure drops it, so a failed tx leaves no trace.
 */
export class Overlay implements StateReader {
  readonly writes: WriteSet = new Map();
  constructor(private readonly parent: StateReader) {}

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const w = this.writes.get(toHex(key));
    if (w !== undefined) return w.value ?? undefined;
    return this.parent.get(key);
  }

  set(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(toHex(key), { key, value });
  }

  delete(key: Uint8Array): void {
    this.writes.set(toHex(key), { key, value: null });
  }

  /** Moves these writes into `target` (which must be this overlay's parent). */
  mergeInto(target: Overlay): void {
    for (const [k, w] of this.writes) target.writes.set(k, w);
  }
}

/**
 * stateRoot = SM3(prevStateRoot || SM3(encoded write set sorted by key)). Hex order of keys is
 * byte order, so sorting the hex strings sorts the keys.
 */
export function nextStateRoot(prev: Uint8Array, writes: WriteSet): Uint8Array {
  const entries = [...writes.keys()].sort().map((k) => {
    const w = writes.get(k) as StateWrite;
    return [w.key, w.value];
  });
  return sm3(prev, sm3(encode(entries)));
}
