import { loadNativeSm2, type NativeSm2 } from "@custos/sm2-native";
import { CustosError } from "@custos/utils";
import type { PackedBatch, Sm2Backend } from "./backend.js";
import { isValidPrivateKey } from "./curve.js";

/** SM2 through the @custos/sm2-native addon (OpenSSL 3 inside Node, plus a fast verify path). */
export class NativeSm2Backend implements Sm2Backend {
  readonly name = "native" as const;

  constructor(private readonly addon: NativeSm2 = loadNativeSm2()) {}

  sign(privateKey: Uint8Array, message: Uint8Array): Uint8Array {
    if (!isValidPrivateKey(privateKey)) {
      throw new CustosError("SM2_INVALID_PRIVATE_KEY", "private key must be 32 bytes in [1, n-2]");
    }
    return new Uint8Array(this.addon.sign(privateKey, message));
  }

  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    return this.addon.verify(publicKey, message, signature);
  }

  /** OpenSSL's own double-scalar multiplication: the reference the fast path is tested against. */
  verifyReference(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
    return this.addon.verifyReference(publicKey, message, signature);
  }

  publicKey(privateKey: Uint8Array): Uint8Array {
    if (!isValidPrivateKey(privateKey)) {
      throw new CustosError("SM2_INVALID_PRIVATE_KEY", "private key must be 32 bytes in [1, n-2]");
    }
    return new Uint8Array(this.addon.publicKey(privateKey));
  }

  async verifyPackedAsync(b: PackedBatch): Promise<Uint8Array> {
    return new Uint8Array(await this.addon.verifyBatch(b.pubs, b.msgs, b.offsets, b.sigs));
  }
}
