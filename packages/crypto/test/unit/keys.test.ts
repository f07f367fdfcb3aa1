import { fromHex, toHex } from "@custos/utils";
import { sm3 as jsSm3 } from "sm-crypto-v2";
import { describe, expect, it } from "vitest";
import {
  addressFromPublicKey,
  generateKeyPair,
  isAddress,
  keyPairFromPrivateKey,
  parseAddress,
  SM2_STANDARD_EXAMPLE,
  sm2Sign,
  sm2Verify,
} from "../../src/index.js";

describe("keys and addresses", () => {
  it("address = last 20 bytes of SM3(x || y), the same for both key encodings", () => {
    const pub = fromHex(SM2_STANDARD_EXAMPLE.publicKey);
    const expected = `0x${jsSm3(pub.subarray(1)).slice(24)}`;
    expect(addressFromPublicKey(pub)).toBe(expected);
    const pair = keyPairFromPrivateKey(fromHex(SM2_STANDARD_EXAMPLE.privateKey));
    expect(pair.address).toBe(expected);
    expect(toHex(pair.publicKey)).toBe(`03${SM2_STANDARD_EXAMPLE.publicKey.slice(2, 66)}`);
    expect(isAddress(expected)).toBe(true);
  });

  it("generates distinct valid key pairs that sign and verify", () => {
    const a = generateKeyPair();
    const b = generateKeyPair();
    expect(a.address).not.toBe(b.address);
    expect(a.publicKey.byteLength).toBe(33);
    const msg = new TextEncoder().encode("hello");
    const sig = sm2Sign(a.privateKey, msg);
    expect(sig.byteLength).toBe(64);
    expect(sm2Verify(a.publicKey, msg, sig)).toBe(true);
    expect(sm2Verify(b.publicKey, msg, sig)).toBe(false);
  });

  it("parses addresses strictly", () => {
    expect(parseAddress("0xABCDEF0123456789abcdef0123456789ABCDEF01")).toBe(
      "0xabcdef0123456789abcdef0123456789abcdef01",
    );
    for (const bad of [
      "",
      "0x",
      "abcdef0123456789abcdef0123456789abcdef01",
      "0xabc",
      `0x${"g".repeat(40)}`,
    ]) {
      expect(() => parseAddress(bad)).toThrow(expect.objectContaining({ code: "INVALID_ADDRESS" }));
    }
    expect(isAddress("0xABCDEF0123456789abcdef0123456789ABCDEF01")).toBe(false); // canonical form is lowercase
    expect(() => addressFromPublicKey(new Uint8Array(33))).toThrow(
      expect.objectContaining({ code: "INVALID_PUBLIC_KEY" }),
    );
  });
});

describe("backend selection", () => {
  it("logs the chosen backend once, however often it is asked", async () => {
    const { selectSm2 } = await import("../../src/index.js");
    const lines: [string, Record<string, unknown> | undefined][] = [];
    const logger = {
      trace() {},
      debug() {},
      info(msg: string, fields?: Record<string, unknown>) {
        lines.push([msg, fields]);
      },
      warn() {},
      error() {},
      child() {
        return logger;
      },
    };
    const first = selectSm2({ logger });
    const second = selectSm2({ logger });
    expect(second.backend).toBe(first.backend);
    expect(lines).toEqual([
      [
        "sm2 backend selected",
        { backend: first.backend.name, requested: first.requested, reason: first.reason },
      ],
    ]);
  });
});
