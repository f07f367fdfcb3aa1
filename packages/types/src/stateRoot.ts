/** A block's state writes, as execution produces them (the state root rule is in stateTree.ts). */
/** One write of a block's execution, by full LevelDB key. */
export interface StateWrite {
  key: Uint8Array;
  /** null deletes */
  value: Uint8Array | null;
}

/** Writes keyed by the hex of their key, so that a later write to a key replaces an earlier one. */
export type WriteSet = Map<string, StateWrite>;
