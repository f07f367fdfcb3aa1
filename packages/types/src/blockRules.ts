import { bytesEqual, toHex } from "@custos/utils";
import type { Block } from "./block.js";
import type { Genesis } from "./genesis.js";

/** What the block rules need of the chain's head. */
export interface HeadView {
  height: number;
  hash: Uint8Array;
  header: { timestamp: number };
  /** The hash of the validator set that must sign the next block. */
  validatorSetHash: Uint8Array;
}

/**
 * What a block must satisfy on top of `head` before it is worth executing, whoever made it: it
 * extends the head, keeps time moving forward, and carries each transaction once, for this
 * chain, inside its blockLimit window, never committed before. Returns why not, or undefined.
 * Signatures and re-execution are checked by the caller.
 */
export function blockRuleViolation(
  genesis: Genesis,
  head: HeadView,
  block: Block,
  isRecentlyCommitted: (hash: Uint8Array) => boolean,
): string | undefined {
  const h = block.header;
  if (h.chainId !== genesis.chainId) return `chain id ${h.chainId}`;
  if (h.height !== head.height + 1) return `height ${h.height} does not follow ${head.height}`;
  if (!bytesEqual(h.prevHash, head.hash)) return "prevHash is not the hash of the head";
  if (h.timestamp <= head.header.timestamp) return "timestamp does not move forward";
  if (!bytesEqual(h.validatorSetHash, head.validatorSetHash)) return "validator set hash differs";
  const seen = new Set<string>();
  for (const t of block.txs) {
    const id = toHex(t.hash);
    if (seen.has(id)) return `tx ${id} twice`;
    if (isRecentlyCommitted(t.hash)) return `tx ${id} was committed before`;
    seen.add(id);
    if (t.tx.chainId !== genesis.chainId) return `tx ${id} is for chain ${t.tx.chainId}`;
    if (t.tx.blockLimit < h.height || t.tx.blockLimit > head.height + genesis.blockLimitWindow)
      return `tx ${id} is outside its blockLimit window`;
  }
  return undefined;
}
