import { CustosError, toHex } from "@custos/utils";
import { decodePublicKeyXY } from "./sm2/curve.js";
import { sm3 } from "./sm3.js";

/** An account address: `0x` + 40 lowercase hex digits. */
export type Address = string;

/** The one pattern of an address in the chain's canonical form (lowercase). */
export const ADDRESS_RE = /^0x[0-9a-f]{40}$/;

export function isAddress(value: unknown): value is Address {
  return typeof value === "string" && ADDRESS_RE.test(value);
}

/** Address = last 20 bytes of SM3(x || y) of the public key (uncompressed, without 04). */
export function addressFromPublicKey(publicKey: Uint8Array): Address {
  const xy = decodePublicKeyXY(publicKey);
  if (xy === null) throw new CustosError("INVALID_PUBLIC_KEY", "not an SM2 public key on the curve");
  return `0x${toHex(sm3(xy).subarray(12))}`;
}

/** Lowercases a `0x` address and checks its form; throws `INVALID_ADDRESS` otherwise. */
export function parseAddress(value: string): Address {
  const lower = typeof value === "string" ? value.toLowerCase() : "";
  if (!ADDRESS_RE.test(lower)) {
    throw new CustosError("INVALID_ADDRESS", "an address is 0x followed by 40 hex digits", {
      value: String(value).slice(0, 50),
    });
  }
  return lower;
}
