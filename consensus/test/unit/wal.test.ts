import { describe, expect, it } from "vitest";
import { crc32, frameRecord, readRecords } from "../../src/index.js";

const te = new TextEncoder();
const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe("WAL records", () => {
  it("CRC-32 matches the IEEE reference value", () => {
    expect(crc32(te.encode("123456789"))).toBe(0xcbf43926);
  });

  it("reads whole records back and drops a torn or corrupted tail", () => {
    const a = frameRecord(te.encode("prepare h=1 v=0"));
    const b = frameRecord(te.encode("commit h=1 v=0"));
    const whole = cat(a, b);
    expect(readRecords(whole).records.map((r) => new TextDecoder().decode(r))).toEqual([
      "prepare h=1 v=0",
      "commit h=1 v=0",
    ]);
    for (let cut = 1; cut < b.length; cut++) {
      const torn = readRecords(whole.subarray(0, a.length + cut));
      expect(torn.records).toHaveLength(1);
      expect(torn.tornBytes).toBe(cut);
      expect(torn.validLength).toBe(a.length);
    }
    const corrupt = whole.slice();
    corrupt[a.length + 10] ^= 1;
    expect(readRecords(corrupt).records).toHaveLength(1);
    expect(readRecords(new Uint8Array()).records).toEqual([]);
  });
});
