import { CustosError } from "@custos/utils";

/**
 * Why the transport refused a handshake or a record. Stable: logs, metrics
 * (`custos_p2p_secure_refused_total{code}`) and tests compare them. Every one of them ends the
 * connection it happened on and nothing else.
 */
export type SmSecureErrorCode =
  /** A handshake message announced more than HANDSHAKE_MAX_BODY bytes, or a peer flooded the handshake. */
  | "SM_HANDSHAKE_TOO_LARGE"
  /** A handshake message of the wrong type or length. */
  | "SM_HANDSHAKE_MALFORMED"
  /** A protocol version or cipher suite this implementation does not speak. */
  | "SM_HANDSHAKE_VERSION"
  /** The handshake did not complete in time (or libp2p gave up on the connection). */
  | "SM_HANDSHAKE_TIMEOUT"
  /** The peer closed the connection in the middle of the handshake. */
  | "SM_HANDSHAKE_CLOSED"
  /** The peer is on another chain (its chain tag differs). */
  | "SM_CHAIN_MISMATCH"
  /** An ephemeral key that is not an uncompressed point on the SM2 curve, or that echoes ours. */
  | "SM_BAD_EPHEMERAL"
  /** A static key that is not a compressed point on the SM2 curve. */
  | "SM_BAD_STATIC_KEY"
  /** The static key is not in the chain's current validator or observer sets. */
  | "SM_PEER_NOT_ALLOWED"
  /** The responder proved a key that the chain does not bind to the peer id that was dialled. */
  | "SM_PEER_MISMATCH"
  /** The peer presented this node's own key. */
  | "SM_SELF"
  /** An SM2 signature over the transcript that does not verify. */
  | "SM_BAD_SIGNATURE"
  /** A Finished MAC that does not match (the peer does not hold the shared secret). */
  | "SM_BAD_FINISHED"
  /** A record header announcing more than MAX_RECORD_PLAINTEXT bytes (or a key update with a body). */
  | "SM_RECORD_TOO_LARGE"
  /** A record of an unknown content type. */
  | "SM_RECORD_TYPE"
  /** A record whose sequence number is not the next one (replayed, reordered or dropped). */
  | "SM_RECORD_SEQUENCE"
  /** A record whose MAC does not match (tampered with, or under other keys). */
  | "SM_RECORD_MAC"
  /** A data record without data. */
  | "SM_RECORD_EMPTY"
  /** A sender that went past the records or bytes one key may protect without a key update. */
  | "SM_REKEY_OVERDUE"
  /** The connection ended in the middle of a record. */
  | "SM_RECORD_TRUNCATED"
  /** This side's sequence numbers are used up (2^53 records; the connection closes first). */
  | "SM_SEQUENCE_EXHAUSTED";

export function refusal(
  code: SmSecureErrorCode,
  message: string,
  meta: Record<string, unknown> = {},
): CustosError<SmSecureErrorCode> {
  return new CustosError<SmSecureErrorCode>(code, message, meta);
}

const CODES = new Set<string>([
  "SM_HANDSHAKE_TOO_LARGE",
  "SM_HANDSHAKE_MALFORMED",
  "SM_HANDSHAKE_VERSION",
  "SM_HANDSHAKE_TIMEOUT",
  "SM_HANDSHAKE_CLOSED",
  "SM_CHAIN_MISMATCH",
  "SM_BAD_EPHEMERAL",
  "SM_BAD_STATIC_KEY",
  "SM_PEER_NOT_ALLOWED",
  "SM_PEER_MISMATCH",
  "SM_SELF",
  "SM_BAD_SIGNATURE",
  "SM_BAD_FINISHED",
  "SM_RECORD_TOO_LARGE",
  "SM_RECORD_TYPE",
  "SM_RECORD_SEQUENCE",
  "SM_RECORD_MAC",
  "SM_RECORD_EMPTY",
  "SM_REKEY_OVERDUE",
  "SM_RECORD_TRUNCATED",
  "SM_SEQUENCE_EXHAUSTED",
] satisfies SmSecureErrorCode[]);

/** True for an error this package raised on purpose (compared by code, never instanceof). */
export function isSmSecureError(err: unknown): err is CustosError<SmSecureErrorCode> {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === "string" && CODES.has(code);
}
