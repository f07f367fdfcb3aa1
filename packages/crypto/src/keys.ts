import { randomBytes } from "node:crypto";
import { CustosError } from "@custos/utils";
import { type Address, addressFromPublicKey } from "./address.js";
import { decodePublicKeyXY, isValidPrivateKey } from "./sm2/curve.js";
import { sm2Backend } from "./sm2/select.js";

export interface Sm2KeyPair {
  /** 32 bytes, in [1, n-2]. */
  privateKey: Uint8Array;
  /** 33-byte compressed point: the form used on the wire. */
  publicKey: Uint8Array;
  address: Address;
}

/** A fresh key pair from the OS's CSPRNG. */
export function generateKeyPair(): Sm2KeyPair {
  for (;;) {
    const priv = new Uint8Array(randomBytes(32));
    if (isValidPrivateKey(priv)) return keyPairFromPrivateKey(priv);
  }
}

export function keyPairFromPrivateKey(privateKey: Uint8Array): Sm2KeyPair {
  const uncompressed = sm2Backend().publicKey(privateKey);
  const publicKey = compressPublicKey(uncompressed);
  return { privateKey: privateKey.slice(), publicKey, address: addressFromPublicKey(publicKey) };
}

function decodeOrThrow(pub: Uint8Array): Uint8Array {
  const xy = decodePublicKeyXY(pub);
  if (xy === null) {
    throw new CustosError(
      "INVALID_PUBLIC_KEY",
      "an SM2 public key is 33 bytes (02/03 || x) or 65 bytes (04 || x || y) on the curve",
      { length: pub instanceof Uint8Array ? pub.byteLength : undefined },
    );
  }
  return xy;
}

/** The 33-byte compressed form of a valid public key (33 or 65 bytes). */
export function compressPublicKey(pub: Uint8Array): Uint8Array {
  const xy = decodeOrThrow(pub);
  const out = new Uint8Array(33);
  out[0] = 2 + ((xy[63] as number) & 1);
  out.set(xy.subarray(0, 32), 1);
  return out;
}

/** The 65-byte uncompressed form 04||x||y of a valid public key. */
export function uncompressPublicKey(pub: Uint8Array): Uint8Array {
  const xy = decodeOrThrow(pub);
  const out = new Uint8Array(65);
  out[0] = 4;
  out.set(xy, 1);
  return out;
}
