import { decode } from "@custos/codec";
import { sm2Sign, sm2Verify, sm3 } from "@custos/crypto";
import { CustosError } from "@custos/utils";
import type { ConsensusCrypto } from "./engine.js";

/**
 * The engine's cryptography on a real chain: SM2 signatures by the validator keys in force at
 * each height, and block hash = SM3(header bytes) of a block encoded as [headerBytes, txs].
 * Commit signatures made this way are exactly a CommitCertificate's.
 */
export function sm2ConsensusCrypto(o: {
  privateKey: Uint8Array;
  /** Public keys (33-byte compressed) of the validator set at a height, by index. */
  validators: (height: number) => readonly Uint8Array[];
}): ConsensusCrypto {
  return {
    sign: (body) => sm2Sign(o.privateKey, body),
    verify: (height, index, body, signature) => {
      const key = o.validators(height)[index];
      return key !== undefined && signature.byteLength === 64 && sm2Verify(key, body, signature);
    },
    blockHash: (block) => {
      const a = decode(block, "Block", 64 * 1024 * 1024);
      if (!Array.isArray(a) || !(a[0] instanceof Uint8Array)) {
        throw new CustosError("DECODE_MALFORMED", "a block is [headerBytes, txs]");
      }
      return sm3(a[0]);
    },
  };
}
