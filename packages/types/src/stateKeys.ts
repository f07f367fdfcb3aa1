/**
 * Where state lives in the ledger's key space (consensus rule: the state tree hashes these exact
 * keys): one byte for the state bucket, the contract's name (a system contract's, or a VM
 * contract's 0x address), a zero byte, the contract's own key.
 */
export const STATE_BUCKET = 0x07;

const utf8 = new TextEncoder();

/** Contract names seen (system contracts, VM addresses), encoded once; bounded. */
const names = new Map<string, Uint8Array>();

function nameBytes(contract: string): Uint8Array {
  let b = names.get(contract);
  if (b === undefined) {
    b = utf8.encode(contract);
    if (names.size >= 4096) names.clear();
    names.set(contract, b);
  }
  return b;
}

/** The key of a contract's state entry. Contract names never contain 0x00. */
export function stateKey(contract: string, key: string | Uint8Array): Uint8Array {
  const c = nameBytes(contract);
  const at = 2 + c.byteLength;
  if (typeof key === "string") {
    // keys are nearly always ASCII: written as they are, without an encoder's copy
    const out = new Uint8Array(at + key.length);
    for (let i = 0; i < key.length; i++) {
      const ch = key.charCodeAt(i);
      if (ch > 0x7f) return stateKey(contract, utf8.encode(key));
      out[at + i] = ch;
    }
    out[0] = STATE_BUCKET;
    out.set(c, 1);
    return out;
  }
  const out = new Uint8Array(at + key.byteLength);
  out[0] = STATE_BUCKET;
  out.set(c, 1);
  out.set(key, at);
  return out;
}
