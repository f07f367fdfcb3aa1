import { decodeSignedTx, LIMITS, type SignedTx } from "@custos/types";
import { type Logger, toHex } from "@custos/utils";
import { encodeSyncRequest, MAX_REPLY_BYTES, MAX_TXS_ASKED } from "../chain/syncProtocol.js";
import type { P2pNetwork } from "./network.js";

/**
 * Fetches the transactions of a proposal that this replica's pool lacks: asks the leader first,
 * then the other validators, for what is still missing, each with a short deadline; returns what
 * it got, decoded from the exact signed bytes (the caller verifies the signatures).
 */
export async function fetchTxs(
  net: P2pNetwork,
  hashes: Uint8Array[],
  from: number,
  signal: AbortSignal,
  log: Logger,
): Promise<SignedTx[]> {
  const want = new Map(hashes.slice(0, MAX_TXS_ASKED).map((h) => [toHex(h), h]));
  const got: SignedTx[] = [];
  const others = net
    .connectedPeers()
    .filter((p) => p.role === "validator" && p.index !== from)
    .map((p) => p.index);
  for (const peer of [from, ...others]) {
    if (want.size === 0 || signal.aborted) break;
    const asked = performance.now();
    try {
      const frames = await net.request(
        peer,
        encodeSyncRequest({ kind: "txs", hashes: [...want.values()] }),
        want.size,
        {
          signal: AbortSignal.any([signal, AbortSignal.timeout(3000)]),
          maxBytes: MAX_REPLY_BYTES + LIMITS.maxTxBytes,
        },
      );
      for (const f of frames) {
        try {
          const t = decodeSignedTx(f);
          if (want.delete(toHex(t.hash))) got.push(t);
        } catch {
          // garbage from a peer: what it stood for is still wanted
        }
      }
    } catch (err) {
      if (signal.aborted) break; // the node is stopping
      // a replica that cannot get a proposal's transactions does not vote for it: worth seeing
      log.warn("could not fetch a proposal's transactions from a peer", {
        peer,
        wanted: want.size,
        ms: Math.round(performance.now() - asked),
        error: String(err),
      });
    }
  }
  return got;
}
