import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import {
  decryptKeystore,
  encryptKeystore,
  generateKeyPair,
  type KeystoreFile,
  loadKeystoreFile,
  parseKeystore,
  writeKeystoreFile,
} from "../../src/index.js";

const dirP = mkdtemp(join(tmpdir(), "custos-ks-"));
afterAll(async () => rm(await dirP, { recursive: true, force: true }));
const FAST = { iterations: 1000 };

describe("keystore", () => {
  it("encrypts with SM4 under PBKDF2-HMAC-SM3 and decrypts with the right password", async () => {
    const pair = generateKeyPair();
    const ks = await encryptKeystore(pair.privateKey, "correct horse", FAST);
    expect(ks.address).toBe(pair.address);
    expect(ks.crypto.cipher).toBe("sm4-cbc");
    expect(ks.crypto.kdf).toBe("pbkdf2-hmac-sm3");
    expect(JSON.stringify(ks)).not.toContain(toHex(pair.privateKey));
    const back = await decryptKeystore(JSON.parse(JSON.stringify(ks)), "correct horse");
    expect(toHex(back.privateKey)).toBe(toHex(pair.privateKey));
    expect(back.address).toBe(pair.address);
  });

  it("says KEYSTORE_BAD_PASSWORD for a wrong password", async () => {
    const ks = await encryptKeystore(generateKeyPair().privateKey, "right", FAST);
    await expect(decryptKeystore(ks, "wrong")).rejects.toMatchObject({ code: "KEYSTORE_BAD_PASSWORD" });
    await expect(decryptKeystore(ks, "")).rejects.toMatchObject({ code: "KEYSTORE_BAD_PASSWORD" });
  });

  it("says KEYSTORE_CORRUPT when the file names a different key than it holds", async () => {
    const ks = await encryptKeystore(generateKeyPair().privateKey, "pw", FAST);
    const other = generateKeyPair();
    const forged: KeystoreFile = { ...ks, address: other.address, publicKey: toHex(other.publicKey) };
    await expect(decryptKeystore(forged, "pw")).rejects.toMatchObject({ code: "KEYSTORE_CORRUPT" });
  });

  it("rejects malformed files with KEYSTORE_INVALID naming what is wrong", async () => {
    const ks = await encryptKeystore(generateKeyPair().privateKey, "pw", FAST);
    const variants: [string, unknown][] = [
      ["null", null],
      ["array", []],
      ["kind", { ...ks, kind: "ethereum" }],
      ["version", { ...ks, version: 2 }],
      ["address", { ...ks, address: "0x12" }],
      ["publicKey", { ...ks, publicKey: "zz" }],
      ["cipher", { ...ks, crypto: { ...ks.crypto, cipher: "aes-128-ctr" } }],
      ["iv", { ...ks, crypto: { ...ks.crypto, iv: "00" } }],
      ["ciphertext", { ...ks, crypto: { ...ks.crypto, ciphertext: "0011" } }],
      [
        "iterations",
        { ...ks, crypto: { ...ks.crypto, kdfParams: { ...ks.crypto.kdfParams, iterations: 1e12 } } },
      ],
      [
        "iterations",
        { ...ks, crypto: { ...ks.crypto, kdfParams: { ...ks.crypto.kdfParams, iterations: 1.5 } } },
      ],
    ];
    for (const [field, v] of variants) {
      let err: unknown;
      try {
        parseKeystore(v);
      } catch (e) {
        err = e;
      }
      expect(err, field).toMatchObject({ code: "KEYSTORE_INVALID" });
      expect(String((err as Error).message), field).toMatch(/not a Custos keystore/);
    }
    await expect(encryptKeystore(generateKeyPair().privateKey, "", FAST)).rejects.toMatchObject({
      code: "KEYSTORE_EMPTY_PASSWORD",
    });
  });

  it("writes owner-only files and never overwrites a key by accident", async () => {
    const dir = await dirP;
    const path = join(dir, "node.key.json");
    const pair = generateKeyPair();
    await writeKeystoreFile(path, await encryptKeystore(pair.privateKey, "pw", FAST));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const before = await readFile(path, "utf8");
    await expect(
      writeKeystoreFile(path, await encryptKeystore(generateKeyPair().privateKey, "pw", FAST)),
    ).rejects.toMatchObject({ code: "FILE_EXISTS" });
    expect(await readFile(path, "utf8")).toBe(before);
    expect((await loadKeystoreFile(path, "pw")).address).toBe(pair.address);
    await writeFile(join(dir, "garbage.json"), "{not json");
    await expect(loadKeystoreFile(join(dir, "garbage.json"), "pw")).rejects.toMatchObject({
      code: "KEYSTORE_INVALID",
    });
    await expect(loadKeystoreFile(join(dir, "missing.json"), "pw")).rejects.toMatchObject({
      code: "FILE_NOT_READABLE",
    });
  });
});
