import {
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readBytes,
  readSafeU64,
  readString,
  readUint,
} from "@custos/codec";
import { type Block, type CommitCertificate, decodeBlock, decodeCertificate, LIMITS } from "@custos/types";
import { CustosError, errorMessage } from "@custos/utils";
import type { Ledger } from "../ledger/ledger.js";

/**
 * The block-sync wire protocol (`/custos/sync/1.0.0`, one request per stream): a request is
 * `[1, "head"]` (answered by one frame `[height, hash]`) or `[1, "blocks", from, count]` with
 * count <= RANGE (answered by up to count frames `[block bytes, certificate bytes]`, in height
 * order, stopping early at the head or past MAX_REPLY_BYTES). Everything read is checked here;
 * what a peer sends is a claim until BlockSync has verified it.
 */

/** Blocks per range request, and bytes per answer (at least one block). */
export const RANGE = 64;
export const MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** Most bytes a blocks answer may take on the wire. */
export const MAX_BLOCKS_ANSWER_BYTES = MAX_REPLY_BYTES + LIMITS.maxBlockBytes + 128 * 1024;

/** Transactions one `txs` request may ask for (a proposal's missing ones). */
export const MAX_TXS_ASKED = 8192;

export type SyncRequest =
  | { kind: "head" }
  | { kind: "blocks"; from: number; count: number }
  /** Transactions by hash (32 bytes each, concatenated): a replica assembling a proposal. */
  | { kind: "txs"; hashes: Uint8Array[] }
  /** The heights of the state snapshots the peer holds (one frame: [heights], newest first). */
  | { kind: "snapshots" }
  /** A snapshot's meta (snapshot/snapshot.ts), in frames of at most META_FRAME_BYTES to concatenate. */
  | { kind: "snapshotMeta"; height: number }
  /** One state chunk of a snapshot (one frame), checked by the asker against the meta's digest. */
  | { kind: "snapshotChunk"; height: number; index: number }
  /**
   * The peer's vital signs (one frame, health.ts). Only answered, for the nodes of the one version
   * that asked this way: they are asked on HEALTH_PROTOCOL now (p2p/network.ts), which a node of an
   * earlier version declines in the negotiation instead of hanging up on an unknown request.
   */
  | { kind: "health" };

/** A snapshot meta travels in frames of this size. */
export const META_FRAME_BYTES = 4 * 1024 * 1024;
/** Most bytes a snapshot meta may have. */
export const MAX_META_BYTES = 256 * 1024 * 1024;

export function encodeSyncRequest(r: SyncRequest): Uint8Array {
  if (r.kind === "head") return encode([1, "head"]);
  if (r.kind === "blocks") return encode([1, "blocks", BigInt(r.from), r.count]);
  if (r.kind === "snapshots") return encode([1, "snapshots"]);
  if (r.kind === "health") return encode([1, "health"]);
  if (r.kind === "snapshotMeta") return encode([1, "snapshotMeta", BigInt(r.height)]);
  if (r.kind === "snapshotChunk") return encode([1, "snapshotChunk", BigInt(r.height), r.index]);
  return encode([1, "txs", Buffer.concat(r.hashes)]);
}

export function decodeSyncRequest(bytes: Uint8Array): SyncRequest {
  const S = "SyncRequest";
  const a = readArray(decode(bytes, S, 32 * MAX_TXS_ASKED + 64), fieldAt(S, ""), { min: 2, max: 4 });
  if (readUint(a[0], fieldAt(S, "version"), 1) !== 1)
    throw new DecodeError("DECODE_UNKNOWN_VERSION", S, "version", "unknown version");
  const kind = readString(a[1], fieldAt(S, "kind"), { max: 16 });
  if ((kind === "head" || kind === "snapshots" || kind === "health") && a.length === 2) return { kind };
  if (kind === "snapshotMeta" && a.length === 3)
    return { kind, height: readSafeU64(a[2], fieldAt(S, "height")) };
  if (kind === "snapshotChunk" && a.length === 4)
    return {
      kind,
      height: readSafeU64(a[2], fieldAt(S, "height")),
      index: readUint(a[3], fieldAt(S, "index"), 1_000_000),
    };
  if (kind === "blocks" && a.length === 4) {
    const from = readSafeU64(a[2], fieldAt(S, "from"));
    const count = readUint(a[3], fieldAt(S, "count"), RANGE);
    if (from < 1 || count < 1)
      throw new DecodeError("DECODE_OUT_OF_RANGE", S, "from", "from and count start at 1");
    return { kind, from, count };
  }
  if (kind === "txs" && a.length === 3) {
    const all = readBytes(a[2], fieldAt(S, "hashes"), { max: 32 * MAX_TXS_ASKED });
    if (all.byteLength === 0 || all.byteLength % 32 !== 0)
      throw new DecodeError("DECODE_OUT_OF_RANGE", S, "hashes", "one or more 32-byte hashes");
    const hashes: Uint8Array[] = [];
    for (let i = 0; i < all.byteLength; i += 32) hashes.push(all.subarray(i, i + 32));
    return { kind, hashes };
  }
  throw new DecodeError("DECODE_OUT_OF_RANGE", S, "kind", `unknown request ${kind}`);
}

export interface SyncHead {
  height: number;
  hash: Uint8Array;
  /** The lowest block the peer holds above genesis (0: all; it started from a snapshot or prunes). */
  base: number;
}

export function decodeSyncHead(frame: Uint8Array | undefined): SyncHead {
  const S = "SyncHead";
  const a = readArray(decode(frame ?? new Uint8Array(), S, 128), fieldAt(S, ""), { min: 2, max: 3 });
  const height = readSafeU64(a[0], fieldAt(S, "height"));
  const base = a.length === 3 ? readSafeU64(a[2], fieldAt(S, "base")) : 0;
  if (base > height) throw new DecodeError("DECODE_OUT_OF_RANGE", S, "base", "above the head");
  return { height, hash: readBytes(a[1], fieldAt(S, "hash"), 32), base };
}

export function decodeSnapshotList(frame: Uint8Array | undefined): number[] {
  const S = "SnapshotList";
  return readArray(decode(frame ?? new Uint8Array(), S, 4096), fieldAt(S, ""), { min: 0, max: 64 }).map(
    (h, i) => readSafeU64(h, fieldAt(S, `[${i}]`)),
  );
}

/** Where the server finds its snapshots (snapshot/store.ts). */
export interface SnapshotSource {
  heights(): number[];
  metaBytes(height: number): Uint8Array | undefined;
  chunk(height: number, index: number): Promise<Uint8Array | undefined>;
}

/** One frame of a blocks answer: the block's exact bytes, decoded, and its certificate. */
export function decodeSyncBlock(frame: Uint8Array): {
  block: Block;
  bytes: Uint8Array;
  cert: CommitCertificate;
} {
  const S = "SyncBlock";
  const a = readArray(decode(frame, S, LIMITS.maxBlockBytes + 128 * 1024), fieldAt(S, ""), 2);
  const bytes = readBytes(a[0], fieldAt(S, "block"), { max: LIMITS.maxBlockBytes });
  const block = decodeBlock(bytes);
  const cert = decodeCertificate(readBytes(a[1], fieldAt(S, "certificate"), { max: 64 * 1024 }));
  return { block, bytes, cert };
}

/** Where the server finds transactions asked for by hash: its pool, then its recent blocks. */
export type TxSource = (hash: Uint8Array) => Uint8Array | undefined;

/**
 * Answers a peer's sync request from the ledger (and, for `txs`, the pool first); SYNC_BAD_REQUEST
 * for anything malformed. A `txs` answer is one frame per transaction found, its exact signed bytes,
 * in the order asked; the asker matches them by hash.
 */
export async function* serveSync(
  ledger: Ledger,
  request: Uint8Array,
  pending?: TxSource,
  snapshots?: SnapshotSource,
  health?: () => Promise<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  let r: SyncRequest;
  try {
    r = decodeSyncRequest(request);
  } catch (err) {
    throw new CustosError<"SYNC_BAD_REQUEST">("SYNC_BAD_REQUEST", `bad sync request: ${errorMessage(err)}`);
  }
  if (r.kind === "head") {
    yield encode([BigInt(ledger.head.height), ledger.head.hash, BigInt(ledger.base)]);
    return;
  }
  if (r.kind === "snapshots") {
    yield encode((snapshots?.heights() ?? []).slice(0, 64).map(BigInt));
    return;
  }
  if (r.kind === "health") {
    if (health) yield await health();
    return;
  }
  if (r.kind === "snapshotMeta") {
    const meta = snapshots?.metaBytes(r.height);
    if (!meta) return;
    for (let i = 0; i < meta.byteLength; i += META_FRAME_BYTES) yield meta.subarray(i, i + META_FRAME_BYTES);
    return;
  }
  if (r.kind === "snapshotChunk") {
    const chunk = await snapshots?.chunk(r.height, r.index);
    if (chunk) yield chunk;
    return;
  }
  if (r.kind === "txs") {
    let bytes = 0;
    const blocks = new Map<number, Block | undefined>();
    for (const h of r.hashes) {
      let tx = pending?.(h);
      if (tx === undefined) {
        const pos = await ledger.txPosition(h);
        if (pos !== undefined) {
          if (!blocks.has(pos.height)) blocks.set(pos.height, await ledger.getBlock(pos.height));
          tx = blocks.get(pos.height)?.txs[pos.index]?.bytes;
        }
      }
      if (tx === undefined) continue;
      bytes += tx.byteLength;
      if (bytes > MAX_REPLY_BYTES) return;
      yield tx;
    }
    return;
  }
  let bytes = 0;
  for (let h = r.from; h < r.from + r.count && h <= ledger.head.height; h++) {
    const block = await ledger.getBlockBytes(h);
    const cert = await ledger.getCertificateBytes(h);
    if (!block || !cert) return;
    const item = encode([block, cert]);
    bytes += item.byteLength;
    if (bytes > MAX_REPLY_BYTES && h > r.from) return;
    yield item;
  }
}
