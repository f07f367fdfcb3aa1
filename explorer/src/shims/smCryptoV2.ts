// The browser's sm-crypto-v2 for packages/crypto (the build puts it in place of
// packages/crypto's smCryptoV2.ts, which loads the library on first use through Node's require):
// the ES module, bundled.
import * as lib from "sm-crypto-v2";

export function smCryptoV2(): typeof lib {
  return lib;
}
