import { describe, expect, it } from "vitest";
import {
  AbortedError,
  bigIntToBytes,
  bytesEqual,
  bytesToBigInt,
  CustosError,
  errorMessage,
  fromHex,
  isCustosError,
  refusal,
  sleep,
  toHex,
  toLatin1,
} from "../../src/index.js";

describe("errors", () => {
  it("carries a stable code and metadata and serialises to JSON", () => {
    const err = new CustosError("TX_TOO_LARGE", "tx is 9000 bytes, limit 8192", { size: 9000 });
    expect(isCustosError(err, "TX_TOO_LARGE")).toBe(true);
    expect(isCustosError(err, "OTHER")).toBe(false);
    expect(isCustosError(new Error("x"))).toBe(false);
    expect(JSON.parse(JSON.stringify(err))).toEqual({
      code: "TX_TOO_LARGE",
      message: "tx is 9000 bytes, limit 8192",
      meta: { size: 9000 },
    });
    expect(errorMessage(err)).toBe("tx is 9000 bytes, limit 8192");
    expect(errorMessage("plain")).toBe("plain");
  });

  it("builds a refusal without a stack trace and leaves the limit as it was", () => {
    const limit = Error.stackTraceLimit;
    const err = refusal("TX_POOL_FULL", "busy", { retryable: true });
    expect(isCustosError(err, "TX_POOL_FULL")).toBe(true);
    expect(err.meta).toEqual({ retryable: true });
    expect(err.stack).toBe("CustosError: busy"); // the header line only, no frames
    expect(Error.stackTraceLimit).toBe(limit);
    expect(new CustosError("X", "m").stack).toMatch(/\n\s+at /);
  });

  it("recognises a code-carrying error from another copy of the package", () => {
    const foreign = Object.assign(new Error("m"), { code: "X" });
    expect(isCustosError(foreign, "X")).toBe(true);
  });
});

describe("bytes", () => {
  it("round-trips hex and rejects malformed hex", () => {
    expect(toHex(fromHex("0x00ff10"))).toBe("00ff10");
    expect(toHex(fromHex("ABcd"))).toBe("abcd");
    for (const bad of ["0x0", "zz", "0xg0", "abc"]) {
      expect(() => fromHex(bad)).toThrow(expect.objectContaining({ code: "INVALID_HEX" }));
    }
    expect(() => fromHex(7 as unknown as string)).toThrow(expect.objectContaining({ code: "INVALID_HEX" }));
  });

  it("converts big-endian bigints with exact width", () => {
    expect(toHex(bigIntToBytes(258n, 4))).toBe("00000102");
    expect(bytesToBigInt(fromHex("00000102"))).toBe(258n);
    expect(bytesToBigInt(new Uint8Array())).toBe(0n);
    expect(() => bigIntToBytes(1n << 32n, 4)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(() => bigIntToBytes(-1n, 4)).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
    expect(bytesEqual(fromHex("0102"), fromHex("0102"))).toBe(true);
    expect(bytesEqual(fromHex("0102"), fromHex("0103"))).toBe(false);
    expect(bytesEqual(fromHex("01"), fromHex("0100"))).toBe(false);
  });

  it("read views where they lie: small (on V8's heap) and large arrays, subarrays at an offset", () => {
    const small = new Uint8Array([0x00, 0x7f, 0x80, 0xff, 0x10]);
    const big = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    expect(toHex(small)).toBe("007f80ff10");
    expect(toHex(small.subarray(2, 4))).toBe("80ff");
    expect(toHex(big.subarray(255, 258))).toBe(
      [255, 256, 257].map((i) => ((i * 7) & 0xff).toString(16).padStart(2, "0")).join(""),
    );
    expect(toHex(new Uint8Array(0))).toBe("");
    expect([...toLatin1(small.subarray(1))].map((c) => c.charCodeAt(0))).toEqual([0x7f, 0x80, 0xff, 0x10]);
    expect(toLatin1(big).length).toBe(300);
    expect(bytesEqual(big.subarray(7, 9), new Uint8Array([49, 56]))).toBe(true);
    expect(bytesEqual(big.subarray(7, 9), big.subarray(8, 10))).toBe(false);
  });
});

describe("sleep", () => {
  it("resolves after the delay and rejects promptly on abort", async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
    const ac = new AbortController();
    const p = sleep(60_000, { signal: ac.signal });
    ac.abort();
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    await expect(sleep(1, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: "ABORTED" });
  });
});
