import { CustosError, errorMessage, fromHex, type Logger } from "@custos/utils";
import type { Sm2Backend, Sm2BackendName } from "./backend.js";
import { JsSm2Backend } from "./jsBackend.js";
import { NativeSm2Backend } from "./nativeBackend.js";

/** Environment variable that forces a backend: `native`, `js`, or `auto` (the default). */
export const SM2_BACKEND_ENV = "CUSTOS_SM2_BACKEND";

export interface Sm2Selection {
  backend: Sm2Backend;
  requested: "auto" | Sm2BackendName;
  /** Why this backend: forced, or why native was not used. */
  reason: string;
}

/**
 * The GB/T 32918.5 example on the recommended curve (ID 1234567812345678, message
 * "message digest"): private key, public key and the signature (r||s) produced with the
 * standard's fixed k. Every backend must reproduce the public key and accept the signature.
 */
export const SM2_STANDARD_EXAMPLE = {
  privateKey: "3945208f7b2144b13f36e38ac6d39f95889393692860b51a42fb81ef4df7c5b8",
  publicKey:
    "0409f9df311e5421a150dd7d161e4bc5c672179fad1833fc076bb08ff356f35020" +
    "ccea490ce26775a52dc6ea718cc1aa600aed05fbf35e084a6632f6072da9ad13",
  za: "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3",
  e: "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640",
  message: "message digest",
  signature:
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3" +
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa",
} as const;

/** Known-answer check run before a backend is trusted. Throws with what failed. */
export function checkSm2Backend(backend: Sm2Backend): void {
  const ex = SM2_STANDARD_EXAMPLE;
  const priv = fromHex(ex.privateKey);
  const pub = fromHex(ex.publicKey);
  const msg = new TextEncoder().encode(ex.message);
  const sig = fromHex(ex.signature);
  const fail = (what: string): never => {
    throw new CustosError(
      "SM2_SELF_TEST_FAILED",
      `SM2 ${backend.name} backend failed its self-test: ${what}`,
    );
  };
  if (Buffer.compare(backend.publicKey(priv), pub) !== 0) fail("public key of the standard example");
  if (!backend.verify(pub, msg, sig)) fail("standard example signature rejected");
  const tampered = sig.slice();
  tampered[63] = (tampered[63] as number) ^ 1;
  if (backend.verify(pub, msg, tampered)) fail("tampered signature accepted");
  const own = backend.sign(priv, msg);
  if (!backend.verify(pub, msg, own)) fail("own signature rejected");
}

let selection: Sm2Selection | undefined;
let logged = false;

function requestedBackend(): "auto" | Sm2BackendName {
  const raw = (process.env[SM2_BACKEND_ENV] ?? "auto").trim().toLowerCase();
  if (raw === "" || raw === "auto") return "auto";
  if (raw === "native" || raw === "js") return raw;
  throw new CustosError(
    "CONFIG_INVALID",
    `${SM2_BACKEND_ENV} must be "native", "js" or "auto", not ${JSON.stringify(raw)}`,
  );
}

function select(): Sm2Selection {
  const requested = requestedBackend();
  if (requested === "js") {
    const backend = new JsSm2Backend();
    checkSm2Backend(backend);
    return { backend, requested, reason: `forced by ${SM2_BACKEND_ENV}=js` };
  }
  try {
    const backend = new NativeSm2Backend();
    checkSm2Backend(backend);
    return {
      backend,
      requested,
      reason: requested === "native" ? `forced by ${SM2_BACKEND_ENV}=native` : "addon loaded",
    };
  } catch (err) {
    if (requested === "native") {
      throw new CustosError(
        "SM2_BACKEND_UNAVAILABLE",
        `${SM2_BACKEND_ENV}=native but the native SM2 addon is unusable: ${errorMessage(err)}`,
        {},
        { cause: err },
      );
    }
    const backend = new JsSm2Backend();
    checkSm2Backend(backend);
    return { backend, requested, reason: `native addon unusable (${errorMessage(err)})` };
  }
}

/**
 * The process-wide SM2 backend, chosen on first use: the native addon when it loads and passes
 * its known-answer check, else the JS backend; `CUSTOS_SM2_BACKEND` can force either. The choice
 * is logged once, on the first call that passes a logger.
 */
export function selectSm2(opts: { logger?: Logger } = {}): Sm2Selection {
  selection ??= select();
  if (opts.logger !== undefined && !logged) {
    logged = true;
    opts.logger.info("sm2 backend selected", {
      backend: selection.backend.name,
      requested: selection.requested,
      reason: selection.reason,
    });
  }
  return selection;
}

export function sm2Backend(): Sm2Backend {
  return selectSm2().backend;
}

/** Signs `message` with the active backend: raw 64-byte r||s. */
export function sm2Sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array {
  return sm2Backend().sign(privateKey, message);
}

/** Verifies with the active backend; false for every malformed input. */
export function sm2Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  return sm2Backend().verify(publicKey, message, signature);
}

export { JsSm2Backend } from "./jsBackend.js";
export { NativeSm2Backend } from "./nativeBackend.js";
