// Loads the compiled addon. Throws (with code SM2_NATIVE_UNAVAILABLE) when it was not built;
// @custos/crypto catches that and falls back to its JS backend.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

export function loadNativeSm2() {
  try {
    return require("./build/Release/sm2native.node");
  } catch (cause) {
    const err = new Error(`the SM2 native addon is not available: ${cause?.message ?? cause}`, { cause });
    err.code = "SM2_NATIVE_UNAVAILABLE";
    throw err;
  }
}
