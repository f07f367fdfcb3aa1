import { keyPairFromPrivateKey, sm2Verify, sm3 } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { readRpcSignature, rpcSigningMessage, signRpcRequest } from "../../src/index.js";

describe("signed RPC requests", () => {
  it("sign exactly the documented bytes: six lines, SM3 of the body last", () => {
    const body = new TextEncoder().encode(
      '{"jsonrpc":"2.0","id":1,"method":"custos_sendTx","params":["0x01"]}',
    );
    const fields = {
      chainId: "custos-testnet",
      member: "0x00112233445566778899aabbccddeeff00112233",
      timestamp: 1767225600000,
      nonce: "000102030405060708090a0b0c0d0e0f",
    };
    const text = new TextDecoder().decode(rpcSigningMessage(fields, body));
    expect(text).toBe(
      [
        "CUSTOS-RPC-SM2-V1",
        "custos-testnet",
        "0x00112233445566778899aabbccddeeff00112233",
        "1767225600000",
        "000102030405060708090a0b0c0d0e0f",
        toHex(sm3(body)),
      ].join("\n"),
    );
    expect(text.endsWith("\n")).toBe(false);
    // the frozen SM3 of that body, so that another implementation can check its hashing too
    expect(toHex(sm3(body))).toBe(BODY_SM3);
  });

  it("headers that verify with the member's key over those bytes, and read back", () => {
    const key = keyPairFromPrivateKey(new Uint8Array(32).fill(7));
    const body = new TextEncoder().encode("[]");
    const h = signRpcRequest(key, "c1", body, { timestamp: 5, nonce: "ff".repeat(16) });
    expect(Object.keys(h).sort()).toEqual([
      "x-custos-member",
      "x-custos-nonce",
      "x-custos-signature",
      "x-custos-timestamp",
    ]);
    const read = readRpcSignature((n) => h[n]);
    expect(read).toMatchObject({ member: key.address, timestamp: 5, nonce: "ff".repeat(16) });
    const msg = rpcSigningMessage(
      { chainId: "c1", member: key.address, timestamp: 5, nonce: "ff".repeat(16) },
      body,
    );
    expect(sm2Verify(key.publicKey, msg, read.signature)).toBe(true);
    expect(() => readRpcSignature((n) => ({ ...h, "x-custos-timestamp": "-1" })[n])).toThrow(
      expect.objectContaining({ code: "SIGNATURE_MALFORMED" }),
    );
  });
});

// `printf %s <body> | openssl dgst -sm3`
const BODY_SM3 = "55077b7ca9e9fea82e0821622c4f013472a3903d8780bba37393938ef82c21fe";
