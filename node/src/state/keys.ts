import { Bucket } from "../ledger/buckets.js";

const utf8 = new TextEncoder();

/** The LevelDB key of a contract's state entry. Contract names never contain 0x00. */
export function stateKey(contract: string, key: string | Uint8Array): Uint8Array {
  const c = utf8.encode(contract);
  const k = typeof key === "string" ? utf8.encode(key) : key;
  const out = new Uint8Array(2 + c.byteLength + k.byteLength);
  out[0] = Bucket.state;
  out.set(c, 1);
  out[1 + c.byteLength] = 0;
  out.set(k, 2 + c.byteLength);
  return out;
}
