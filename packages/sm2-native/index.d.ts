/** The raw addon. Inputs are not validated beyond what keeps it memory-safe: use @custos/crypto. */
export interface NativeSm2 {
  /** SM2 verify with ID 1234567812345678; false for every malformed input. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /** The same check with OpenSSL's EC_POINT_mul for s*G + t*P: slower, kept as a reference for tests. */
  verifyReference(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
  /**
   * The same check with e given instead of SM3(Z_A || message), through the fast path or (reference)
   * OpenSSL's: for tests that need a chosen e (an x1 between n and p cannot be reached otherwise).
   */
  verifyDigest(publicKey: Uint8Array, e: Uint8Array, signature: Uint8Array, reference: boolean): boolean;
  /** Raw r||s signature (64 bytes). Throws for a private key outside [1, n-2]. */
  sign(privateKey: Uint8Array, message: Uint8Array): Buffer;
  /** Uncompressed public key 04||x||y (65 bytes). */
  publicKey(privateKey: Uint8Array): Buffer;
  /**
   * Verifies a batch on the libuv thread pool. `pubs` holds n slots of 66 bytes (length byte, then
   * the key), `offsets` n+1 message boundaries into `msgs`, `sigs` n*64 bytes. Resolves to n bytes, 1 = valid.
   */
  verifyBatch(pubs: Uint8Array, msgs: Uint8Array, offsets: Uint32Array, sigs: Uint8Array): Promise<Buffer>;
}

export function loadNativeSm2(): NativeSm2;
