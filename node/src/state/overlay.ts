import type { WriteSet } from "@custos/types";
import { compareBytes, toHex } from "@custos/utils";

export type { StateWrite, WriteSet } from "@custos/types";

/** Reads state by full LevelDB key; undefined when absent. */
export interface StateReader {
  get(key: Uint8Array): Promise<Uint8Array | undefined>;
  /** The same read without waiting (the contract VM cannot await inside a call). */
  getSync(key: Uint8Array): Uint8Array | undefined;
  /**
   * Contract-state entries whose key starts with `prefix` and is >= `start`, ascending by bytes,
   * at most `limit`. Only VM contracts' key spaces (names starting with 0x) are scannable.
   */
  scanSync(prefix: Uint8Array, start: Uint8Array, limit: number): Array<[Uint8Array, Uint8Array]>;
  /** The same reads by the key's hex (`id`, as toHex(key)): layered readers compute it once. */
  getById?(id: string, key: Uint8Array): Promise<Uint8Array | undefined>;
  getSyncById?(id: string, key: Uint8Array): Uint8Array | undefined;
}

/**
 * Writes layered over a reader. A transaction runs on an overlay over the block's overlay:
 * success merges it down, failure drops it, so a failed tx leaves no trace.
 */
export class Overlay implements StateReader {
  readonly writes: WriteSet = new Map();
  constructor(private readonly parent: StateReader) {}

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.getById(toHex(key), key);
  }

  getById(id: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    const w = this.writes.get(id);
    if (w !== undefined) return Promise.resolve(w.value ?? undefined);
    return this.parent.getById ? this.parent.getById(id, key) : this.parent.get(key);
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.getSyncById(toHex(key), key);
  }

  getSyncById(id: string, key: Uint8Array): Uint8Array | undefined {
    const w = this.writes.get(id);
    if (w !== undefined) return w.value ?? undefined;
    return this.parent.getSyncById ? this.parent.getSyncById(id, key) : this.parent.getSync(key);
  }

  scanSync(prefix: Uint8Array, start: Uint8Array, limit: number): Array<[Uint8Array, Uint8Array]> {
    const lo = toHex(compareBytes(start, prefix) > 0 ? start : prefix);
    const p = toHex(prefix);
    const mine = [...this.writes].filter(([k]) => k.startsWith(p) && k >= lo);
    const deleted = mine.filter(([, w]) => w.value === null).length;
    const merged = new Map<string, [Uint8Array, Uint8Array]>();
    for (const e of this.parent.scanSync(prefix, start, limit + deleted)) merged.set(toHex(e[0]), e);
    for (const [k, w] of mine) {
      if (w.value === null) merged.delete(k);
      else merged.set(k, [w.key, w.value]);
    }
    return [...merged.keys()]
      .sort()
      .slice(0, limit)
      .map((k) => merged.get(k) as [Uint8Array, Uint8Array]);
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
