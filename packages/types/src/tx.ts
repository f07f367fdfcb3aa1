import {
  assertEncodesAs,
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readBytes,
  readNullable,
  readSafeU64,
  readString,
  readU64,
  readVersion,
} from "@custos/codec";
import { type Address, addressFromPublicKey, sm2Sign, sm2Verify, sm3 } from "@custos/crypto";
import { CHAIN_ID_RE, LIMITS, METHOD_RE, TARGET_RE } from "./limits.js";

export const TX_VERSION = 1;

/**
 * What a sender signs. On the wire: [version, chainId, nonce, blockLimit, sender, to, method,
 * args, value, memo]. There is no per-account nonce: `nonce` is 16 random bytes and replay is
 * stopped by the blockLimit window plus the set of recently committed tx hashes.
 */
export interface TxBody {
  version: typeof TX_VERSION;
  chainId: string;
  nonce: Uint8Array;
  /** Valid while height < blockLimit <= height + window. */
  blockLimit: number;
  /** 33-byte compressed SM2 public key. */
  sender: Uint8Array;
  /** Contract address or system contract name. */
  to: string;
  method: string;
  /** msgpack-encoded arguments, decoded by the callee. */
  args: Uint8Array;
  /** Attached value in fen. */
  value: bigint;
  memo: string | null;
}

/** A transaction as it travels: the exact signed bytes, plus what was decoded from them. */
export interface SignedTx {
  /** msgpack [body, signature]: what is stored, forwarded and put in blocks. */
  bytes: Uint8Array;
  /** The exact body bytes that were signed. */
  body: Uint8Array;
  /** Raw 64-byte r||s over `body`. */
  signature: Uint8Array;
  tx: TxBody;
  /** SM3(body): the transaction's id. */
  hash: Uint8Array;
}

export function encodeTxBody(tx: TxBody): Uint8Array {
  return encode(txBodyFields(tx));
}

function txBodyFields(tx: TxBody): unknown[] {
  return [
    tx.version,
    tx.chainId,
    tx.nonce,
    BigInt(tx.blockLimit),
    tx.sender,
    tx.to,
    tx.method,
    tx.args,
    tx.value,
    tx.memo,
  ];
}

export function decodeTxBody(bytes: Uint8Array): TxBody {
  const S = "Tx";
  const a = readArray(decode(bytes, S, LIMITS.maxTxBytes), fieldAt(S, ""), 10);
  const tx: TxBody = {
    version: readVersion(a[0], fieldAt(S, "version"), [TX_VERSION]) as typeof TX_VERSION,
    chainId: readString(a[1], fieldAt(S, "chainId"), { max: LIMITS.maxChainIdLength, pattern: CHAIN_ID_RE }),
    nonce: readBytes(a[2], fieldAt(S, "nonce"), 16),
    blockLimit: readSafeU64(a[3], fieldAt(S, "blockLimit")),
    sender: readBytes(a[4], fieldAt(S, "sender"), 33),
    to: readString(a[5], fieldAt(S, "to"), { max: 42, pattern: TARGET_RE }),
    method: readString(a[6], fieldAt(S, "method"), { max: LIMITS.maxMethodLength, pattern: METHOD_RE }),
    args: readBytes(a[7], fieldAt(S, "args"), { max: LIMITS.maxTxArgsBytes }),
    value: readU64(a[8], fieldAt(S, "value")),
    memo: readNullable(a[9], (v) => readString(v, fieldAt(S, "memo"), { max: LIMITS.maxMemoLength })),
  };
  if (tx.sender[0] !== 2 && tx.sender[0] !== 3) {
    throw new DecodeError(
      "DECODE_OUT_OF_RANGE",
      S,
      "sender",
      "expected a compressed public key (02/03 prefix)",
    );
  }
  assertEncodesAs(bytes, txBodyFields(tx), S);
  return tx;
}

/** Decodes and checks a signed transaction's structure; the signature is checked separately. */
export function decodeSignedTx(bytes: Uint8Array): SignedTx {
  const S = "SignedTx";
  const a = readArray(decode(bytes, S, LIMITS.maxTxBytes), fieldAt(S, ""), 2);
  const body = readBytes(a[0], fieldAt(S, "body"), { max: LIMITS.maxTxBytes });
  const signature = readBytes(a[1], fieldAt(S, "signature"), 64);
  const tx = decodeTxBody(body);
  assertEncodesAs(bytes, [body, signature], S);
  return { bytes, body, signature, tx, hash: sm3(body) };
}

/** Signs a body with the active SM2 backend. */
export function signTx(tx: TxBody, privateKey: Uint8Array): SignedTx {
  const body = encodeTxBody(tx);
  const signature = sm2Sign(privateKey, body);
  return { bytes: encode([body, signature]), body, signature, tx, hash: sm3(body) };
}

/** Synchronous signature check (the node uses the verifier pool instead). */
export function verifySignedTx(stx: SignedTx): boolean {
  return sm2Verify(stx.tx.sender, stx.body, stx.signature);
}

export function txSender(tx: TxBody): Address {
  return addressFromPublicKey(tx.sender);
}
