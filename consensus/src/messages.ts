import {
  assertCanonical,
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readBytes,
  readNullable,
  readSafeU64,
  readString,
  readUint,
} from "@custos/codec";
import { CERT_VERSION, commitVoteBytes } from "@custos/types";

/**
 * Consensus messages. Every message travels as a signed envelope [body, sender, signature]; the
 * signature covers the exact body bytes. Bodies start with a tag and the certificate version,
 * then chainId, height, view: a signature for one kind, chain, height or view never passes for
 * another. The Commit body is exactly `commitVoteBytes`, so a quorum of Commit signatures is the
 * block's CommitCertificate.
 */
export type Kind = "preprepare" | "prepare" | "commit" | "viewchange" | "newview" | "decision" | "status";

const TAG: Record<Kind, string> = {
  preprepare: "custos/preprepare",
  prepare: "custos/prepare",
  commit: "custos/commit",
  viewchange: "custos/viewchange",
  newview: "custos/newview",
  decision: "custos/decision",
  status: "custos/status",
};
const KIND_OF = new Map(Object.entries(TAG).map(([k, t]) => [t, k as Kind]));

/** Signatures of validators, by index, strictly ascending. */
export type Signatures = [validator: number, signature: Uint8Array][];

/** Proof that a block was prepared in a view: a quorum of Prepare signatures. */
export interface PreparedCert {
  view: number;
  blockHash: Uint8Array;
  block: Uint8Array;
  prepares: Signatures;
}

export type Body =
  | {
      kind: "preprepare";
      chainId: string;
      height: number;
      view: number;
      blockHash: Uint8Array;
      block: Uint8Array;
    }
  | { kind: "prepare" | "commit"; chainId: string; height: number; view: number; blockHash: Uint8Array }
  | { kind: "viewchange"; chainId: string; height: number; view: number; prepared: PreparedCert | null }
  | {
      kind: "newview";
      chainId: string;
      height: number;
      view: number;
      /** The ViewChange envelopes (2f+1) that justify the view. */
      viewChanges: Uint8Array[];
      blockHash: Uint8Array;
      block: Uint8Array;
    }
  | {
      /** "I am at this height": sent to a peer seen further ahead, which answers with decisions. */
      kind: "status";
      chainId: string;
      height: number;
      view: number;
    }
  | {
      /** A committed block with its commit signatures: how a lagging replica catches up. */
      kind: "decision";
      chainId: string;
      height: number;
      view: number;
      blockHash: Uint8Array;
      block: Uint8Array;
      commits: Signatures;
    };

export interface Envelope {
  bytes: Uint8Array;
  body: Body;
  bodyBytes: Uint8Array;
  sender: number;
  signature: Uint8Array;
}

const sigs = (s: Signatures) => s.map(([v, sig]) => [v, sig]);

export function encodeBody(b: Body): Uint8Array {
  const head = [TAG[b.kind], CERT_VERSION, b.chainId, BigInt(b.height), BigInt(b.view)];
  switch (b.kind) {
    case "preprepare":
      return encode([...head, b.blockHash, b.block]);
    case "prepare":
      return encode([...head, b.blockHash]);
    case "status":
      return encode([...head, null]);
    case "commit":
      return commitVoteBytes(b.chainId, b.height, b.view, b.blockHash);
    case "viewchange":
      return encode([
        ...head,
        b.prepared
          ? [BigInt(b.prepared.view), b.prepared.blockHash, b.prepared.block, sigs(b.prepared.prepares)]
          : null,
      ]);
    case "newview":
      return encode([...head, b.viewChanges, b.blockHash, b.block]);
    case "decision":
      return encode([...head, b.blockHash, b.block, sigs(b.commits)]);
  }
}

function readSigs(v: unknown, where: string, max: number): Signatures {
  let last = -1;
  return readArray(v, fieldAt("Consensus", where), { min: 0, max }).map((p, i) => {
    const a = readArray(p, fieldAt("Consensus", `${where}[${i}]`), 2);
    const validator = readUint(a[0], fieldAt("Consensus", `${where}[${i}].validator`), 1023);
    if (validator <= last)
      throw new DecodeError("DECODE_OUT_OF_RANGE", "Consensus", where, "validators must ascend");
    last = validator;
    return [validator, readBytes(a[1], fieldAt("Consensus", `${where}[${i}].signature`), { max: 128 })];
  });
}

/** Decodes and shape-checks a body; signatures are not checked here. */
export function decodeBody(bytes: Uint8Array, maxBytes: number): Body {
  const S = "Consensus";
  const a = readArray(decode(bytes, S, maxBytes), fieldAt(S, ""), { min: 6, max: 8 });
  const kind = KIND_OF.get(readString(a[0], fieldAt(S, "tag"), { max: 32 }));
  if (kind === undefined) throw new DecodeError("DECODE_OUT_OF_RANGE", S, "tag", "unknown message kind");
  if (readUint(a[1], fieldAt(S, "version"), 255) !== CERT_VERSION) {
    throw new DecodeError("DECODE_UNKNOWN_VERSION", S, "version", "unknown version");
  }
  const base = {
    chainId: readString(a[2], fieldAt(S, "chainId"), { max: 64 }),
    height: readSafeU64(a[3], fieldAt(S, "height")),
    view: readSafeU64(a[4], fieldAt(S, "view")),
  };
  const hash = (v: unknown) => readBytes(v, fieldAt(S, "blockHash"), 32);
  const block = (v: unknown) => readBytes(v, fieldAt(S, "block"), { max: maxBytes });
  let body: Body;
  const len = (n: number) => {
    if (a.length !== n) throw new DecodeError("DECODE_WRONG_LENGTH", S, "", `a ${kind} has ${n} fields`);
  };
  switch (kind) {
    case "preprepare":
      len(7);
      body = { kind, ...base, blockHash: hash(a[5]), block: block(a[6]) };
      break;
    case "prepare":
    case "commit":
      len(6);
      body = { kind, ...base, blockHash: hash(a[5]) };
      break;
    case "status":
      len(6);
      if (a[5] !== null) throw new DecodeError("DECODE_WRONG_TYPE", S, "status", "expected null");
      body = { kind, ...base };
      break;
    case "viewchange":
      len(6);
      body = {
        kind,
        ...base,
        prepared: readNullable(a[5], (v) => {
          const p = readArray(v, fieldAt(S, "prepared"), 4);
          return {
            view: readSafeU64(p[0], fieldAt(S, "prepared.view")),
            blockHash: hash(p[1]),
            block: block(p[2]),
            prepares: readSigs(p[3], "prepared.prepares", 1024),
          };
        }),
      };
      break;
    case "newview":
      len(8);
      body = {
        kind,
        ...base,
        viewChanges: readArray(a[5], fieldAt(S, "viewChanges"), { min: 1, max: 1024 }).map((e) =>
          readBytes(e, fieldAt(S, "viewChanges[]"), { max: maxBytes }),
        ),
        blockHash: hash(a[6]),
        block: block(a[7]),
      };
      break;
    case "decision":
      len(8);
      body = {
        kind,
        ...base,
        blockHash: hash(a[5]),
        block: block(a[6]),
        commits: readSigs(a[7], "commits", 1024),
      };
      break;
  }
  assertCanonical(bytes, encodeBody(body), S);
  return body;
}

export function encodeEnvelope(bodyBytes: Uint8Array, sender: number, signature: Uint8Array): Uint8Array {
  return encode([bodyBytes, sender, signature]);
}

/** Decodes an envelope and its body (shape only). Throws DecodeError on anything malformed. */
export function decodeEnvelope(bytes: Uint8Array, maxBytes: number): Envelope {
  const S = "ConsensusEnvelope";
  const a = readArray(decode(bytes, S, maxBytes + 256), fieldAt(S, ""), 3);
  const bodyBytes = readBytes(a[0], fieldAt(S, "body"), { max: maxBytes });
  const sender = readUint(a[1], fieldAt(S, "sender"), 1023);
  const signature = readBytes(a[2], fieldAt(S, "signature"), { max: 128 });
  const body = decodeBody(bodyBytes, maxBytes);
  assertCanonical(bytes, encodeEnvelope(bodyBytes, sender, signature), S);
  return { bytes, body, bodyBytes, sender, signature };
}

/** The Prepare body a prepared certificate's signatures cover. */
export function prepareBody(
  chainId: string,
  height: number,
  view: number,
  blockHash: Uint8Array,
): Uint8Array {
  return encodeBody({ kind: "prepare", chainId, height, view, blockHash });
}

/**
 * Where a signed vote sits in the order a correct replica signs in: by height, then view, then
 * phase (0 view change, 1 proposal: pre-prepare or new view, 2 prepare, 3 commit). A replica
 * never signs a vote below or beside (same place, other bytes) one it has signed: a guard that
 * remembers the last position refuses equivocation even when the WAL is lost. Status and
 * decision messages are not votes (undefined).
 */
export interface VotePosition {
  height: number;
  view: number;
  phase: 0 | 1 | 2 | 3;
}

const PHASE: Partial<Record<Kind, 0 | 1 | 2 | 3>> = {
  viewchange: 0,
  preprepare: 1,
  newview: 1,
  prepare: 2,
  commit: 3,
};

export function votePosition(body: Body): VotePosition | undefined {
  const phase = PHASE[body.kind];
  return phase === undefined ? undefined : { height: body.height, view: body.view, phase };
}

/** -1, 0 or 1 as `a` comes before, at or after `b`. */
export function compareVotePositions(a: VotePosition, b: VotePosition): number {
  if (a.height !== b.height) return a.height < b.height ? -1 : 1;
  if (a.view !== b.view) return a.view < b.view ? -1 : 1;
  if (a.phase !== b.phase) return a.phase < b.phase ? -1 : 1;
  return 0;
}
