import { createRequire } from "node:module";

type SmCryptoV2 = typeof import("sm-crypto-v2");

let lib: SmCryptoV2 | undefined;

/**
 * sm-crypto-v2, loaded on first use. It is the JS backend and the SM4 fallback only; with the
 * native addon and Node's own SM4 a process never needs it, and loading it costs every `custos`
 * command ~0.1 s of start-up. Its CommonJS build is loaded synchronously, as the backend is
 * chosen synchronously.
 */
export function smCryptoV2(): SmCryptoV2 {
  lib ??= createRequire(import.meta.url)("sm-crypto-v2") as SmCryptoV2;
  return lib;
}
