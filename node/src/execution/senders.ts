import { type Address, addressFromPublicKey } from "@custos/crypto";
import { toHex } from "@custos/utils";

const MAX = 100_000;
const cache = new Map<string, Address>();

/** The address of a (valid) compressed public key, cached: deriving it decompresses the point. */
export function senderAddress(publicKey: Uint8Array): Address {
  const id = toHex(publicKey);
  let a = cache.get(id);
  if (a === undefined) {
    a = addressFromPublicKey(publicKey);
    if (cache.size >= MAX) cache.delete(cache.keys().next().value as string);
    cache.set(id, a);
  }
  return a;
}
