import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import {
  base58btc,
  encryptP2pKeystore,
  generateP2pKey,
  loadP2pKeystore,
  peerIdFromEd25519,
} from "../../src/index.js";

/** An independent base58btc decoder, to check what the encoder wrote. */
function decode58(s: string): Uint8Array {
  const A = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  let n = 0n;
  for (const c of s) n = n * 58n + BigInt(A.indexOf(c));
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const lead = s.match(/^1*/)?.[0].length ?? 0;
  return new Uint8Array([...new Uint8Array(lead), ...Buffer.from(hex, "hex")]);
}

describe("libp2p network key", () => {
  it("peer id = base58btc(identity multihash(protobuf Ed25519 public key))", () => {
    const k = generateP2pKey();
    expect(k.peerId).toMatch(/^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/);
    const mh = decode58(k.peerId);
    expect(toHex(mh.subarray(0, 6))).toBe("002408011220");
    expect(toHex(mh.subarray(6))).toBe(toHex(k.publicKey));
    expect(base58btc(new Uint8Array([0, 0, 1]))).toBe("112");
    expect(() => peerIdFromEd25519(new Uint8Array(31))).toThrow(
      expect.objectContaining({ code: "INVALID_PUBLIC_KEY" }),
    );
  });

  it("round-trips through an encrypted keystore; a wrong password is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "custos-p2p-"));
    try {
      const k = generateP2pKey();
      const file = join(dir, "p2p.json");
      await writeFile(file, JSON.stringify(await encryptP2pKeystore(k, "pw", { iterations: 1000 })));
      const back = await loadP2pKeystore(file, "pw");
      expect(back.peerId).toBe(k.peerId);
      expect(toHex(back.seed)).toBe(toHex(k.seed));
      await expect(loadP2pKeystore(file, "nope")).rejects.toMatchObject({ code: "KEYSTORE_BAD_PASSWORD" });
      await writeFile(file, JSON.stringify({ kind: "custos-sm2-keystore" }));
      await expect(loadP2pKeystore(file, "pw")).rejects.toMatchObject({ code: "KEYSTORE_INVALID" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
