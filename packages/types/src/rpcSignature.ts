import { randomBytes } from "node:crypto";
import { ADDRESS_RE, type Sm2KeyPair, sm2Sign, sm3 } from "@custos/crypto";
import { CustosError, toHex } from "@custos/utils";

/**
 * A JSON-RPC request signed with a member's SM2 key: the alternative to an API key for a member
 * of the chain (the node checks the key against the member registry on chain). Four headers:
 *
 *   X-Custos-Member:    the member's address, 0x + 40 lowercase hex
 *   X-Custos-Timestamp: milliseconds since the epoch, decimal
 *   X-Custos-Nonce:     16 random bytes, 32 lowercase hex
 *   X-Custos-Signature: SM2 signature (ID 1234567812345678, raw r||s), 128 lowercase hex
 *
 * The signature is over exactly these bytes, six lines joined by "\n" (0x0a), no final newline,
 * ASCII:
 *
 *   CUSTOS-RPC-SM2-V1
 *   <chainId>
 *   <member address>
 *   <timestamp>
 *   <nonce>
 *   <SM3 of the HTTP request body, 64 lowercase hex>
 *
 * The body is the JSON-RPC request (or batch) exactly as sent, so the method, its params and the
 * request id are all under the signature; no JSON is re-serialised on either side.
 */
export const RPC_SIGNATURE_VERSION = "CUSTOS-RPC-SM2-V1";

export const RPC_SIGNATURE_HEADERS = {
  member: "x-custos-member",
  timestamp: "x-custos-timestamp",
  nonce: "x-custos-nonce",
  signature: "x-custos-signature",
} as const;

export interface RpcSignatureFields {
  chainId: string;
  member: string;
  timestamp: number;
  nonce: string;
}

export type RpcSignatureErrorCode = "SIGNATURE_MALFORMED";

/** The bytes a signed request's signature covers. */
export function rpcSigningMessage(f: RpcSignatureFields, body: Uint8Array): Uint8Array {
  return new TextEncoder().encode(
    [RPC_SIGNATURE_VERSION, f.chainId, f.member, String(f.timestamp), f.nonce, toHex(sm3(body))].join("\n"),
  );
}

/** The four headers of a request signed by `key` (a member's) for the chain `chainId`. */
export function signRpcRequest(
  key: Sm2KeyPair,
  chainId: string,
  body: Uint8Array,
  o: { timestamp?: number; nonce?: string } = {},
): Record<string, string> {
  const f: RpcSignatureFields = {
    chainId,
    member: key.address,
    timestamp: o.timestamp ?? Date.now(),
    nonce: o.nonce ?? randomBytes(16).toString("hex"),
  };
  return {
    [RPC_SIGNATURE_HEADERS.member]: f.member,
    [RPC_SIGNATURE_HEADERS.timestamp]: String(f.timestamp),
    [RPC_SIGNATURE_HEADERS.nonce]: f.nonce,
    [RPC_SIGNATURE_HEADERS.signature]: toHex(sm2Sign(key.privateKey, rpcSigningMessage(f, body))),
  };
}

/** True when a request carries any of the signature headers (then it must carry all, well-formed). */
export function hasRpcSignature(header: (name: string) => string | undefined): boolean {
  return Object.values(RPC_SIGNATURE_HEADERS).some((h) => header(h) !== undefined);
}

/** The signature headers of a request, shape-checked; SIGNATURE_MALFORMED names what is wrong. */
export function readRpcSignature(
  header: (name: string) => string | undefined,
): Omit<RpcSignatureFields, "chainId"> & { signature: Uint8Array } {
  const bad = (what: string) =>
    new CustosError<RpcSignatureErrorCode>("SIGNATURE_MALFORMED", `a signed request needs ${what}`);
  const member = header(RPC_SIGNATURE_HEADERS.member);
  const timestamp = header(RPC_SIGNATURE_HEADERS.timestamp);
  const nonce = header(RPC_SIGNATURE_HEADERS.nonce);
  const signature = header(RPC_SIGNATURE_HEADERS.signature);
  if (member === undefined || !ADDRESS_RE.test(member))
    throw bad("X-Custos-Member: the member's address, 0x and 40 lowercase hex digits");
  if (timestamp === undefined || !/^[0-9]{1,16}$/.test(timestamp))
    throw bad("X-Custos-Timestamp: milliseconds since the epoch");
  if (nonce === undefined || !/^[0-9a-f]{32}$/.test(nonce))
    throw bad("X-Custos-Nonce: 16 random bytes as 32 lowercase hex digits");
  if (signature === undefined || !/^[0-9a-f]{128}$/.test(signature))
    throw bad("X-Custos-Signature: the SM2 signature r||s as 128 lowercase hex digits");
  return {
    member,
    timestamp: Number(timestamp),
    nonce,
    signature: Uint8Array.from(Buffer.from(signature, "hex")),
  };
}
