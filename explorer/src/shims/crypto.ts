// What the chain's packages import from @custos/crypto, for the browser: SM3 and SM2
// verification in pure JS (packages/crypto's own JS backend over sm-crypto-v2, its curve checks
// included), addresses. Nothing here signs or holds a key: the explorer is read-only.
import { JsSm2Backend } from "../../../packages/crypto/src/sm2/jsBackend.js";

export { ADDRESS_RE, addressFromPublicKey, isAddress } from "../../../packages/crypto/src/address.js";
export { decodePublicKeyXY } from "../../../packages/crypto/src/sm2/curve.js";
export { HASH_RE, SM3_LENGTH, sm3 } from "./sm3.js";

const backend = new JsSm2Backend();

/** SM2 verification as the node does it: false for every malformed input, never a throw. */
export function sm2Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return backend.verify(publicKey, message, signature);
}

export function sm2Sign(): Uint8Array {
  throw new Error("the explorer signs nothing");
}
