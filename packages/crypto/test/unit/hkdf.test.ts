import { hkdfSync } from "node:crypto";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { hkdfSm3, hkdfSm3Expand, hkdfSm3Extract, p2pKeyFromNodeKey } from "../../src/index.js";

const bytes = (n: number, f: (i: number) => number) => Uint8Array.from({ length: n }, (_, i) => f(i));

describe("HKDF-SM3", () => {
  it("agrees with OpenSSL's HKDF over SM3 (node:crypto hkdfSync) for every length and salt", () => {
    const ikm = bytes(22, () => 0x0b);
    const info = bytes(10, (i) => 0xf0 + i);
    for (const salt of [new Uint8Array(0), bytes(13, (i) => i), bytes(80, (i) => 0x60 + i)]) {
      for (const length of [1, 16, 31, 32, 33, 64, 100, 255 * 32]) {
        const ours = hkdfSm3(salt, ikm, info, length);
        const openssl = new Uint8Array(hkdfSync("sm3", ikm, salt, info, length));
        expect(toHex(ours), `salt ${salt.length}, length ${length}`).toBe(toHex(openssl));
      }
    }
  });

  it("is RFC 5869's extract-then-expand: a fixed vector", () => {
    // RFC 5869 test case 1's inputs with SM3 in place of SHA-256; the expected values were printed
    // by OpenSSL 3's command line (2026-12-02): `openssl kdf -keylen 42 -kdfopt digest:SM3
    // -kdfopt hexkey:0b..0b -kdfopt hexsalt:00..0c -kdfopt hexinfo:f0..f9 HKDF` and, for the PRK,
    // `openssl mac -digest SM3 -macopt hexkey:00..0c HMAC` over the 22 bytes of 0x0b
    const ikm = bytes(22, () => 0x0b);
    const salt = bytes(13, (i) => i);
    const info = bytes(10, (i) => 0xf0 + i);
    const prk = hkdfSm3Extract(salt, ikm);
    expect(toHex(hkdfSm3Expand(prk, info, 42))).toBe(
      toHex(new Uint8Array(hkdfSync("sm3", ikm, salt, info, 42))),
    );
    expect(toHex(prk)).toHaveLength(64);
    expect(toHex(prk)).toBe("e0d6f7b0bd056327b7659f1f39ad850561fbcf4fb10fb58e88eafa55cf7cd01e");
    expect(toHex(hkdfSm3Expand(prk, info, 42))).toBe(
      "c69fe91b7aaee2dd5718d72dcaee0cce93f1b8e41f792da51261b6a517e68b36ed2c595572b01dfa359b",
    );
  });

  it("refuses an output length outside [1, 255 * 32]", () => {
    const prk = new Uint8Array(32);
    expect(() => hkdfSm3Expand(prk, new Uint8Array(0), 0)).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
    expect(() => hkdfSm3Expand(prk, new Uint8Array(0), 255 * 32 + 1)).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT" }),
    );
  });
});

describe("the libp2p key derived from the node key", () => {
  it("is HKDF-SM3(salt 'custos/libp2p-key/v1', d, 'ed25519 seed'): deterministic, distinct per key", () => {
    const d = bytes(32, (i) => i + 1);
    const k = p2pKeyFromNodeKey(d);
    const seed = hkdfSync("sm3", d, Buffer.from("custos/libp2p-key/v1"), Buffer.from("ed25519 seed"), 32);
    expect(toHex(k.seed)).toBe(toHex(new Uint8Array(seed)));
    expect(p2pKeyFromNodeKey(d).peerId).toBe(k.peerId);
    expect(k.peerId).toMatch(/^12D3KooW/);
    // frozen: genesis files name peer ids derived this way
    expect(k.peerId).toBe(FROZEN_PEER_ID);
    const other = bytes(32, (i) => i + 2);
    expect(p2pKeyFromNodeKey(other).peerId).not.toBe(k.peerId);
  });

  it("refuses what is not an SM2 private key", () => {
    expect(() => p2pKeyFromNodeKey(new Uint8Array(32))).toThrow(
      expect.objectContaining({ code: "SM2_INVALID_PRIVATE_KEY" }),
    );
    expect(() => p2pKeyFromNodeKey(new Uint8Array(31).fill(1))).toThrow(
      expect.objectContaining({ code: "SM2_INVALID_PRIVATE_KEY" }),
    );
  });
});

const FROZEN_PEER_ID = "12D3KooWLgviuREbxMwkDxWhBiY88f1edXa7EWzSi71j4oMMesTk";
