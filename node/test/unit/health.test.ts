import { decode, encode } from "@custos/codec";
import { describe, expect, it } from "vitest";
import { decodeNodeHealth, encodeNodeHealth, HealthBoard, type NodeHealth } from "../../src/health.js";

const sample: NodeHealth = {
  role: "validator",
  height: 1234,
  headTime: 1_764_000_000_000,
  view: 7,
  peers: 3,
  pool: 42,
  viewChanges: 2,
  cpuMs: 98_765,
  rssBytes: 180 * 1024 * 1024,
  heapBytes: 50 * 1024 * 1024,
  diskBytes: 12 * 1024 * 1024,
  syncing: false,
  uptimeSeconds: 3600,
};

describe("node health (what a node reports to a peer that asks)", () => {
  it("round-trips, and refuses a malformed or foreign answer", () => {
    expect(decodeNodeHealth(encodeNodeHealth(sample))).toEqual(sample);
    // the encoder's own field list, as decoded from the wire: each bad case changes one thing
    const fields = (h: NodeHealth) => [...(decode(encodeNodeHealth(h), "NodeHealth", 512) as unknown[])];
    const bad: [unknown[] | Uint8Array, RegExp][] = [
      [[2, ...fields(sample).slice(1)], /version/],
      [[1, "leader", ...fields(sample).slice(2)], /role/],
      [[...fields(sample).slice(0, 2), -1n, ...fields(sample).slice(3)], /height/],
      [[...fields(sample).slice(0, 2), 1.5, ...fields(sample).slice(3)], /height/],
      [[...fields(sample), 1], /NodeHealth/],
      [fields(sample).slice(0, 13), /NodeHealth/],
      [[...fields(sample).slice(0, 12), "no", ...fields(sample).slice(13)], /syncing/],
      [new Uint8Array([0xc1]), /NodeHealth/],
      [encode(["x".repeat(600)]), /NodeHealth/],
      [new Uint8Array(), /NodeHealth/],
    ];
    for (const [v, why] of bad) {
      const bytes = v instanceof Uint8Array ? v : encode(v);
      expect(() => decodeNodeHealth(bytes), String(why)).toThrow(why);
    }
  });

  it("lists this node first, then each peer with its figures or why there are none; one round per maxAgeMs", async () => {
    const asked: number[] = [];
    const board = new HealthBoard({
      name: "validator-0",
      local: async () => sample,
      peers: () => [
        { index: 1, name: "validator-1", role: "validator", connected: true },
        { index: 2, name: "validator-2", role: "validator", connected: true },
        { index: 3, name: "validator-3", role: "validator", connected: false },
        { index: 4, name: "observer-0", role: "observer", connected: true },
      ],
      ask: async (index, signal) => {
        asked.push(index);
        if (index === 1) return encodeNodeHealth({ ...sample, height: 1233 });
        if (index === 2) return encode(["forged"]);
        // never answers: the timeout ends the wait
        return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      },
      maxAgeMs: 60_000,
      timeoutMs: 200,
    });
    const rows = await board.rows();
    expect(rows.map((r) => [r.name, r.self, r.connected])).toEqual([
      ["validator-0", true, true],
      ["validator-1", false, true],
      ["validator-2", false, true],
      ["validator-3", false, false],
      ["observer-0", false, true],
    ]);
    expect(rows[0]?.health).toEqual(sample);
    expect(rows[1]?.health?.height).toBe(1233);
    expect(rows[2]?.health).toBeNull();
    expect(rows[2]?.error).toMatch(/NodeHealth/);
    expect(rows[3]?.error).toBe("not connected");
    expect(rows[4]?.health).toBeNull();
    expect(rows[4]?.error).toMatch(/timeout|abort/i);
    expect(asked.sort()).toEqual([1, 2, 4]);
    // asked again within maxAgeMs: the same round, the peers are not asked again
    await board.rows();
    expect(asked.length).toBe(3);
  });
});
