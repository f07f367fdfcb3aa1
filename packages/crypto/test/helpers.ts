import { loadNativeSm2 } from "@custos/sm2-native";
import { JsSm2Backend, NativeSm2Backend, type Sm2Backend } from "../src/index.js";

/**
 * Both backends, each constructed directly so that every test runs against both whatever
 * CUSTOS_SM2_BACKEND selects. The native one is missing only where the addon could not be built;
 * under CI that is a failure, not a skip.
 */
export function nativeBackend(): NativeSm2Backend | null {
  try {
    loadNativeSm2();
    return new NativeSm2Backend();
  } catch (err) {
    if (process.env.CI) throw new Error(`native SM2 addon must be built in CI: ${String(err)}`);
    return null;
  }
}

export function allBackends(): Sm2Backend[] {
  const n = nativeBackend();
  return n ? [n, new JsSm2Backend()] : [new JsSm2Backend()];
}

/** A deterministic byte stream for reproducible test inputs (xorshift32). */
export function seededBytes(seed: number): (n: number) => Uint8Array {
  let x = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
    return out;
  };
}
