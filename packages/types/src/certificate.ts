import {
  assertCanonical,
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readBytes,
  readSafeU64,
  readString,
  readUint,
  readVersion,
} from "@custos/codec";
import { sm2Verify } from "@custos/crypto";
import { bytesEqual, CustosError, toHex } from "@custos/utils";
import { CHAIN_ID_RE, LIMITS } from "./limits.js";

export const CERT_VERSION = 1;

export interface CommitSignature {
  /** Index in the validator set of the block's height. */
  validator: number;
  signature: Uint8Array;
}

/**
 * Proof that a block is final: signatures of a quorum of validators over
 * commitVoteBytes(chainId, height, view, blockHash). On the wire: [version, chainId, height,
 * view, blockHash, [[validator, signature]...]] with validators strictly ascending.
 */
export interface CommitCertificate {
  version: typeof CERT_VERSION;
  chainId: string;
  height: number;
  view: number;
  blockHash: Uint8Array;
  signatures: CommitSignature[];
}

/** The bytes a validator signs to commit a block; the tag keeps them from meaning anything else. */
export function commitVoteBytes(
  chainId: string,
  height: number,
  view: number,
  blockHash: Uint8Array,
): Uint8Array {
  return encode(["custos/commit", CERT_VERSION, chainId, BigInt(height), BigInt(view), blockHash]);
}

export function encodeCertificate(c: CommitCertificate): Uint8Array {
  return encode([
    c.version,
    c.chainId,
    BigInt(c.height),
    BigInt(c.view),
    c.blockHash,
    c.signatures.map((s) => [s.validator, s.signature]),
  ]);
}

export function decodeCertificate(bytes: Uint8Array): CommitCertificate {
  const S = "CommitCertificate";
  const a = readArray(decode(bytes, S, 64 * 1024), fieldAt(S, ""), 6);
  const sigs = readArray(a[5], fieldAt(S, "signatures"), { min: 1, max: LIMITS.maxValidators });
  let last = -1;
  const signatures = sigs.map((raw, i) => {
    const f = `signatures[${i}]`;
    const pair = readArray(raw, fieldAt(S, f), 2);
    const validator = readUint(pair[0], fieldAt(S, `${f}.validator`), LIMITS.maxValidators - 1);
    if (validator <= last) {
      throw new DecodeError(
        "DECODE_OUT_OF_RANGE",
        S,
        `${f}.validator`,
        "validators must be strictly ascending",
      );
    }
    last = validator;
    return { validator, signature: readBytes(pair[1], fieldAt(S, `${f}.signature`), 64) };
  });
  const c: CommitCertificate = {
    version: readVersion(a[0], fieldAt(S, "version"), [CERT_VERSION]) as typeof CERT_VERSION,
    chainId: readString(a[1], fieldAt(S, "chainId"), { max: LIMITS.maxChainIdLength, pattern: CHAIN_ID_RE }),
    height: readSafeU64(a[2], fieldAt(S, "height")),
    view: readSafeU64(a[3], fieldAt(S, "view")),
    blockHash: readBytes(a[4], fieldAt(S, "blockHash"), 32),
    signatures,
  };
  assertCanonical(bytes, encodeCertificate(c), S);
  return c;
}

/** Votes needed among n validators: n - f with f = floor((n - 1) / 3), i.e. 2f + 1 when n = 3f + 1. */
export function quorumSize(n: number): number {
  return n - Math.floor((n - 1) / 3);
}

/**
 * Checks that `cert` finalises `blockHash` at `height` of `chainId` under `validators` (their
 * public keys, by index): every signature valid, at least a quorum. Throws `CERT_INVALID` saying why.
 */
export function verifyCommitCertificate(
  cert: CommitCertificate,
  expected: { chainId: string; height: number; blockHash: Uint8Array },
  validators: readonly Uint8Array[],
  verify: (pub: Uint8Array, msg: Uint8Array, sig: Uint8Array) => boolean = sm2Verify,
): void {
  const fail = (why: string): never => {
    throw new CustosError("CERT_INVALID", `commit certificate for height ${expected.height}: ${why}`, {
      height: expected.height,
    });
  };
  if (cert.chainId !== expected.chainId) fail(`chain id ${cert.chainId}, expected ${expected.chainId}`);
  if (cert.height !== expected.height) fail(`certifies height ${cert.height}`);
  if (!bytesEqual(cert.blockHash, expected.blockHash)) fail(`certifies block 0x${toHex(cert.blockHash)}`);
  const need = quorumSize(validators.length);
  if (cert.signatures.length < need) fail(`${cert.signatures.length} signatures, quorum is ${need}`);
  const msg = commitVoteBytes(cert.chainId, cert.height, cert.view, cert.blockHash);
  for (const s of cert.signatures) {
    const pub = validators[s.validator];
    if (pub === undefined) fail(`validator ${s.validator} is not in a set of ${validators.length}`);
    if (!verify(pub as Uint8Array, msg, s.signature)) fail(`bad signature from validator ${s.validator}`);
  }
}
