export type Sm2BackendName = "native" | "js";

/** One signature to check: SM2 over `message` with the chain's ID, raw r||s. */
export interface VerifyItem {
  publicKey: Uint8Array;
  message: Uint8Array;
  signature: Uint8Array;
}

/**
 * The SM2 operations of the chain's profile. Both backends produce and accept the same
 * signatures (the tests cross-verify them). `verify` returns false for every malformed input and
 * never throws on the bytes it is given; `sign` and `publicKey` throw `SM2_INVALID_PRIVATE_KEY`
 * for a private key outside [1, n-2].
 */
export interface Sm2Backend {
  readonly name: Sm2BackendName;
  sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array;
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** The uncompressed public key 04||x||y (65 bytes). */
  publicKey(privateKey: Uint8Array): Uint8Array;
  /** Verifies a packed batch off the JS thread, where the backend has such a path. */
  verifyPackedAsync?(batch: PackedBatch): Promise<Uint8Array>;
}

/**
 * A batch in the layout the native addon and the verify workers take: n public-key slots of 66
 * bytes (length byte, then the key), message boundaries, and n*64 signature bytes. An item whose
 * key or signature has an impossible length gets an empty key slot or a zero signature, which
 * every verifier rejects.
 */
export interface PackedBatch {
  count: number;
  pubs: Uint8Array;
  msgs: Uint8Array;
  offsets: Uint32Array;
  sigs: Uint8Array;
}

export const PUB_SLOT = 66;

export function packBatch(items: readonly VerifyItem[]): PackedBatch {
  const count = items.length;
  const pubs = new Uint8Array(count * PUB_SLOT);
  const sigs = new Uint8Array(count * 64);
  const offsets = new Uint32Array(count + 1);
  let total = 0;
  for (let i = 0; i < count; i++) {
    const m = (items[i] as VerifyItem).message;
    total += m instanceof Uint8Array ? m.byteLength : 0;
    offsets[i + 1] = total;
  }
  const msgs = new Uint8Array(total);
  for (let i = 0; i < count; i++) {
    const { publicKey, message, signature } = items[i] as VerifyItem;
    if (publicKey instanceof Uint8Array && (publicKey.byteLength === 33 || publicKey.byteLength === 65)) {
      pubs[i * PUB_SLOT] = publicKey.byteLength;
      pubs.set(publicKey, i * PUB_SLOT + 1);
    }
    if (signature instanceof Uint8Array && signature.byteLength === 64) sigs.set(signature, i * 64);
    if (message instanceof Uint8Array) msgs.set(message, offsets[i] as number);
  }
  return { count, pubs, msgs, offsets, sigs };
}

/** Runs `verify` over a packed batch in this thread; 1 = valid. */
export function verifyPackedSync(backend: Sm2Backend, b: PackedBatch): Uint8Array {
  const out = new Uint8Array(b.count);
  for (let i = 0; i < b.count; i++) {
    const len = b.pubs[i * PUB_SLOT] as number;
    const pub = b.pubs.subarray(i * PUB_SLOT + 1, i * PUB_SLOT + 1 + len);
    const msg = b.msgs.subarray(b.offsets[i] as number, b.offsets[i + 1] as number);
    out[i] = backend.verify(pub, msg, b.sigs.subarray(i * 64, i * 64 + 64)) ? 1 : 0;
  }
  return out;
}
