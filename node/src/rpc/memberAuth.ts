import { sm2Verify } from "@custos/crypto";
import { readRpcSignature, rpcSigningMessage } from "@custos/types";
import { CustosError, isCustosError } from "@custos/utils";
import type { RpcErrorName } from "./errors.js";

/** Why a signed request was refused (HTTP 401 unless said otherwise). */
export type MemberSignatureError =
  | "SIGNATURE_MALFORMED"
  | "SIGNATURE_EXPIRED"
  | "SIGNATURE_REPLAYED"
  | "SIGNATURE_UNKNOWN_MEMBER"
  | "SIGNATURE_INVALID"
  | "SIGNATURES_NOT_ACCEPTED";

export interface MemberSignatureOptions {
  chainId: string;
  /** A request's timestamp must be within this many ms of the node's clock; its nonce is remembered as long. */
  windowMs: number;
  /** Nonces remembered at most (a full cache refuses new signed requests as RATE_LIMITED, retryable). */
  maxNonces?: number;
}

/**
 * Checks JSON-RPC requests signed with a member's SM2 key (the format is in
 * @custos/types rpcSignature.ts): shape, timestamp within the window, nonce not seen in the
 * window (replays), the member in the registry on chain as of the latest block, and the
 * signature against that member's key over the exact body bytes.
 */
export class MemberSignatures {
  /** member + nonce -> when it may be forgotten; in insertion order, so expired ones are at the front. */
  private readonly nonces = new Map<string, number>();
  private readonly maxNonces: number;

  constructor(
    private readonly o: MemberSignatureOptions,
    /** The public key of the member with this address in the registry, if it is a member. */
    private readonly memberKey: (address: string) => Promise<Uint8Array | undefined>,
    private readonly now: () => number = Date.now,
  ) {
    this.maxNonces = o.maxNonces ?? 100_000;
  }

  /** The member who signed the request; throws a CustosError with the reason otherwise. */
  async verify(header: (name: string) => string | undefined, body: Uint8Array): Promise<string> {
    let sig: ReturnType<typeof readRpcSignature>;
    try {
      sig = readRpcSignature(header);
    } catch (err) {
      if (isCustosError(err)) throw err;
      throw new CustosError<MemberSignatureError>("SIGNATURE_MALFORMED", "unreadable signature headers");
    }
    const now = this.now();
    if (Math.abs(now - sig.timestamp) > this.o.windowMs)
      throw new CustosError<MemberSignatureError>(
        "SIGNATURE_EXPIRED",
        `the request's timestamp ${sig.timestamp} is more than ${this.o.windowMs} ms from the node's clock (${now}): sign it again, and check the client's clock`,
      );
    const publicKey = await this.memberKey(sig.member);
    if (!publicKey)
      throw new CustosError<MemberSignatureError>(
        "SIGNATURE_UNKNOWN_MEMBER",
        `${sig.member} is not a member of chain ${this.o.chainId}`,
      );
    const message = rpcSigningMessage({ chainId: this.o.chainId, ...sig }, body);
    if (!sm2Verify(publicKey, message, sig.signature))
      throw new CustosError<MemberSignatureError>(
        "SIGNATURE_INVALID",
        `the signature is not ${sig.member}'s over this request for chain ${this.o.chainId}`,
      );
    // only a valid signature spends its nonce, so nobody can burn another member's nonces
    this.forgetExpired(now);
    const key = `${sig.member} ${sig.nonce}`;
    if (this.nonces.has(key))
      throw new CustosError<MemberSignatureError>(
        "SIGNATURE_REPLAYED",
        "this signed request was received before (its nonce is spent): sign each request anew",
      );
    if (this.nonces.size >= this.maxNonces)
      throw new CustosError<RpcErrorName>("RATE_LIMITED", "too many signed requests; slow down and retry", {
        retryable: true,
      });
    this.nonces.set(key, Math.max(now, sig.timestamp) + this.o.windowMs);
    return sig.member;
  }

  private forgetExpired(now: number): void {
    for (const [k, until] of this.nonces) {
      if (until > now) break;
      this.nonces.delete(k);
    }
  }
}
