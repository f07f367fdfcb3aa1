import { sm2Verify } from "@custos/crypto";
import type { Genesis } from "@custos/types";
import { bytesEqual, CustosError, errorMessage, isCustosError, type Logger, sleep } from "@custos/utils";
import type { SyncNetwork } from "../chain/sync.js";
import {
  decodeSnapshotList,
  encodeSyncRequest,
  MAX_META_BYTES,
  META_FRAME_BYTES,
} from "../chain/syncProtocol.js";
import { Ledger, type LedgerModules, type LedgerOptions } from "../ledger/ledger.js";
import {
  chunkDigest,
  decodeChunk,
  decodeSnapshotMeta,
  type SnapshotErrorCode,
  type VerifiedSnapshot,
  verifySnapshotMeta,
} from "./snapshot.js";

/** Chunk requests in flight. */
const IN_FLIGHT = 4;

export interface SnapshotJoinOptions {
  genesis: Genesis;
  /** The ledger to create (it must not exist). */
  ledger: { opts: LedgerOptions; modules: LedgerModules };
  net: SyncNetwork;
  log: Logger;
  signal: AbortSignal;
  /** How long to wait for peers to connect and offer snapshots (default 30 s). */
  waitMs?: number;
}

export interface SnapshotJoined {
  height: number;
  entries: number;
  chunks: number;
  bytes: number;
  peer: number;
  seconds: number;
}

/**
 * Starts an empty ledger from the newest snapshot the peers offer. Every piece is checked
 * against genesis (snapshot/snapshot.ts: the validator sets through their certified changes,
 * block H's certificate, the replay window), every chunk against the meta's digest, and the
 * state rebuilt from the chunks against block H's certified state root. The chunks come from the
 * peer that sent the meta, so that any mismatch is that peer's fault: it is disconnected (and
 * refused for a while) and the next peer, or the next height, is tried. Throws
 * SNAPSHOT_UNAVAILABLE when no peer had a snapshot that checked out.
 */
export async function joinFromSnapshot(o: SnapshotJoinOptions): Promise<SnapshotJoined> {
  const started = Date.now();
  const offers = await collectOffers(o);
  const heights = [...offers.keys()].sort((a, b) => b - a);
  if (heights.length === 0)
    throw new CustosError<SnapshotErrorCode>(
      "SNAPSHOT_UNAVAILABLE",
      "no peer offers a state snapshot (peers take them every snapshots.interval blocks; start without --from-snapshot to replay from genesis)",
    );
  const failures: string[] = [];
  for (const height of heights) {
    for (const peer of (offers.get(height) as number[]).sort((a, b) => a - b)) {
      o.signal.throwIfAborted();
      try {
        const got = await fromPeer(o, peer, height);
        const seconds = (Date.now() - started) / 1000;
        o.log.info("ledger started from a snapshot", { ...got, peer, seconds });
        return { ...got, peer, seconds };
      } catch (err) {
        if (o.signal.aborted) throw err;
        failures.push(`peer ${peer} at ${height}: ${errorMessage(err)}`);
        if (isCustosError(err, "SNAPSHOT_INVALID")) {
          o.log.warn("peer served an invalid snapshot; disconnecting", {
            peer,
            height,
            reason: errorMessage(err),
          });
          await o.net.disconnect(peer).catch(() => {});
        } else o.log.warn("snapshot fetch failed", { peer, height, error: errorMessage(err) });
      }
    }
  }
  throw new CustosError<SnapshotErrorCode>(
    "SNAPSHOT_UNAVAILABLE",
    `no snapshot offered by the peers checked out: ${failures.slice(0, 4).join("; ")}`,
    { failures },
  );
}

/** Waits for peers, then asks each which snapshots it holds: height -> peers. */
async function collectOffers(o: SnapshotJoinOptions): Promise<Map<number, number[]>> {
  const deadline = Date.now() + (o.waitMs ?? 30_000);
  // the first peer, then a moment for the others (not needed once every genesis validator is
  // connected): more offers to choose from, and others to turn to when one forges
  const validators = o.genesis.consensus.validators.length;
  const allValidators = () =>
    o.net.connectedPeers().filter((p) => p.role === "validator").length >= validators;
  while (o.net.connectedPeers().length === 0 && Date.now() < deadline) await sleep(50, { signal: o.signal });
  const settle = Math.min(deadline, Date.now() + 2000);
  while (Date.now() < settle && !allValidators()) await sleep(50, { signal: o.signal });
  const offers = new Map<number, number[]>();
  await Promise.all(
    o.net.connectedPeers().map(async (p) => {
      try {
        const [frame] = await o.net.request(p.index, encodeSyncRequest({ kind: "snapshots" }), 1, {
          signal: AbortSignal.any([o.signal, AbortSignal.timeout(10_000)]),
          maxBytes: 4096,
        });
        for (const h of decodeSnapshotList(frame)) offers.set(h, [...(offers.get(h) ?? []), p.index]);
      } catch (err) {
        o.log.debug("snapshot list failed", { peer: p.index, error: errorMessage(err) });
      }
    }),
  );
  o.log.info("snapshots offered", {
    peers: o.net.connectedPeers().length,
    heights: [...offers.keys()].sort((a, b) => b - a).slice(0, 8),
  });
  return offers;
}

function invalid(message: string): CustosError<SnapshotErrorCode> {
  return new CustosError<SnapshotErrorCode>("SNAPSHOT_INVALID", `snapshot: ${message}`);
}

async function fromPeer(
  o: SnapshotJoinOptions,
  peer: number,
  height: number,
): Promise<{ height: number; entries: number; chunks: number; bytes: number }> {
  const ask = (kind: Parameters<typeof encodeSyncRequest>[0], maxFrames: number, maxBytes: number) =>
    o.net.request(peer, encodeSyncRequest(kind), maxFrames, {
      signal: AbortSignal.any([o.signal, AbortSignal.timeout(60_000)]),
      maxBytes,
    });
  const frames = await ask(
    { kind: "snapshotMeta", height },
    Math.ceil(MAX_META_BYTES / META_FRAME_BYTES),
    MAX_META_BYTES,
  );
  if (frames.length === 0)
    throw new CustosError<SnapshotErrorCode>("SNAPSHOT_UNAVAILABLE", "the peer no longer has it");
  let verified: VerifiedSnapshot;
  try {
    const meta = decodeSnapshotMeta(Buffer.concat(frames));
    if (meta.height !== height) throw invalid(`asked for ${height}, got ${meta.height}`);
    verified = verifySnapshotMeta(o.genesis, meta, sm2Verify);
  } catch (err) {
    if (isCustosError(err, "SNAPSHOT_INVALID")) throw err;
    throw invalid(errorMessage(err));
  }
  const { meta } = verified;
  const chunks: Uint8Array[] = new Array(meta.chunks.length);
  let next = 0;
  let bytes = 0;
  const worker = async () => {
    while (next < meta.chunks.length) {
      const index = next++;
      const [chunk, extra] = await ask({ kind: "snapshotChunk", height, index }, 1, 64 * 1024 * 1024);
      if (!chunk || extra)
        throw new CustosError<SnapshotErrorCode>("SNAPSHOT_UNAVAILABLE", `chunk ${index} not served`);
      if (!bytesEqual(chunkDigest(chunk), meta.chunks[index] as Uint8Array))
        throw invalid(`chunk ${index} does not match the digest in its meta`);
      chunks[index] = chunk;
      bytes += chunk.byteLength;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  let entries: [Uint8Array, Uint8Array][];
  try {
    entries = chunks.flatMap((c) => decodeChunk(c));
  } catch (err) {
    throw invalid(`a chunk does not decode: ${errorMessage(err)}`);
  }
  if (entries.length !== meta.entries)
    throw invalid(`${entries.length} state entries, the meta says ${meta.entries}`);
  const created = await Ledger.createFromSnapshot(
    o.ledger.opts,
    o.ledger.modules,
    {
      blockBytes: meta.block,
      certificate: meta.certificate,
      window: meta.window,
      setChanges: meta.setChanges,
    },
    entries,
  );
  return { height: created.height, entries: created.entries, chunks: chunks.length, bytes };
}
