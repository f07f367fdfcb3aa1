/**
 * Where state lives in the ledger's key space (consensus rule: the state tree hashes these exact
 * keys): one byte for the state bucket, the contract's name (a system contract's, or a VM
 * contract's 0x address), a zero byte, the contract's own key.
 */
export const STATE_BUCKET = 0x07;

const utf8 = new TextEncoder();

/** The key of a contract's state entry. Contract names never contain 0x00. */
export function stateKey(contract: string, key: string | Uint8Array): Uint8Array {
  const c = utf8.encode(contract);
  const k = typeof key === "string" ? utf8.encode(key) : key;
  const out = new Uint8Array(2 + c.byteLength + k.byteLength);
  out[0] = STATE_BUCKET;
  out.set(c, 1);
  out[1 + c.byteLength] = 0;
  out.set(k, 2 + c.byteLength);
  return out;
}
