import { generateKeyPair, sm3 } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { describe, expect, it } from "vitest";
import { encodeGenesis, genesisToJson, parseGenesis } from "../../src/index.js";

const pid = (c: string) => `12D3KooW${c.repeat(44)}`;
const key = () => toHex(generateKeyPair().publicKey);
const tiers = Object.fromEntries(
  [1, 2, 3, 4].map((t) => [t, { singleLimit: "100", dailyLimit: "1000" }]),
) as Record<string, unknown>;

function json(observers?: unknown[]) {
  return {
    chainId: "custos-g",
    timestamp: 1,
    blockLimitWindow: 10,
    consensus: {
      validators: [
        { name: "v0", publicKey: key(), peerId: pid("A"), p2p: ["/ip4/10.0.0.1/tcp/30300"] },
        { name: "v1", publicKey: key(), peerId: pid("B"), p2p: ["/ip4/10.0.0.2/tcp/30300"] },
      ],
      minBlockIntervalMs: 0,
      maxBlockTxs: 10,
    },
    ...(observers ? { observers } : {}),
    members: [{ name: "op", publicKey: key(), roles: ["operator"] }],
    ecny: { tiers, largeTxThreshold: "10" },
  };
}

describe("genesis observers", () => {
  it("are optional, round-trip through JSON, and are part of the genesis hash", () => {
    const base = json();
    const plain = parseGenesis(base);
    expect(plain.observers).toEqual([]);
    const withObs = parseGenesis({
      ...base,
      observers: [{ name: "audit", publicKey: key(), peerId: pid("C") }],
    });
    expect(withObs.observers.map((o) => [o.name, o.peerId, o.p2p])).toEqual([["audit", pid("C"), []]]);
    const again = parseGenesis(JSON.parse(JSON.stringify(genesisToJson(withObs))));
    expect(toHex(encodeGenesis(again))).toBe(toHex(encodeGenesis(withObs)));
    expect(toHex(sm3(encodeGenesis(withObs)))).not.toBe(toHex(sm3(encodeGenesis(plain))));
  });

  it("refuse a peer id a validator (or another observer) has, and malformed entries, naming the field", () => {
    expect(() => parseGenesis(json([{ name: "audit", publicKey: key(), peerId: pid("A") }]))).toThrow(
      /observers\[0\]\.peerId: duplicate peer id/,
    );
    expect(() =>
      parseGenesis(
        json([
          { name: "a", publicKey: key(), peerId: pid("C") },
          { name: "b", publicKey: key(), peerId: pid("C") },
        ]),
      ),
    ).toThrow(/observers\[1\]\.peerId/);
    expect(() => parseGenesis(json([{ name: "a", publicKey: key() }]))).toThrow(/observers\[0\]\.peerId/);
    expect(() => parseGenesis(json([{ name: "a", publicKey: "02zz", peerId: pid("C") }]))).toThrow(
      /observers\[0\]\.publicKey/,
    );
    expect(() =>
      parseGenesis(json([{ name: "a", publicKey: key(), peerId: pid("C"), p2p: ["not an address"] }])),
    ).toThrow(/observers\[0\]\.p2p\[0\]/);
  });
});
