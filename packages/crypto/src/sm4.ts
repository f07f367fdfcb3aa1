import { createCipheriv, createDecipheriv, getCiphers } from "node:crypto";
import { CustosError } from "@custos/utils";
import { smCryptoV2 } from "./smCryptoV2.js";

/** SM4 (GB/T 32907) in CBC mode with PKCS#7 padding: 16-byte key and IV. */
const nodeHasSm4 = getCiphers().includes("sm4-cbc");

function checkKeyIv(key: Uint8Array, iv: Uint8Array): void {
  if (key.byteLength !== 16 || iv.byteLength !== 16) {
    throw new CustosError("SM4_INVALID_ARGUMENT", "SM4 key and IV must be 16 bytes each");
  }
}

export function sm4CbcEncrypt(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array): Uint8Array {
  checkKeyIv(key, iv);
  if (nodeHasSm4) {
    const c = createCipheriv("sm4-cbc", key, iv);
    return new Uint8Array(Buffer.concat([c.update(plaintext), c.final()]));
  }
  return smCryptoV2().sm4.encrypt(plaintext, key, {
    mode: "cbc",
    iv,
    padding: "pkcs#7",
    output: "array",
  }) as Uint8Array;
}

/** Throws `SM4_DECRYPT_FAILED` on a bad padding (wrong key or corrupted data). */
export function sm4CbcDecrypt(key: Uint8Array, iv: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  checkKeyIv(key, iv);
  try {
    if (nodeHasSm4) {
      const d = createDecipheriv("sm4-cbc", key, iv);
      return new Uint8Array(Buffer.concat([d.update(ciphertext), d.final()]));
    }
    return smCryptoV2().sm4.decrypt(ciphertext, key, {
      mode: "cbc",
      iv,
      padding: "pkcs#7",
      output: "array",
    }) as Uint8Array;
  } catch (cause) {
    throw new CustosError(
      "SM4_DECRYPT_FAILED",
      "SM4 decryption failed (wrong key or corrupted data)",
      {},
      { cause },
    );
  }
}
