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

describe("genesis p2p.secure", () => {
  it("absent means noise (files made before it keep their hash); sm and noise round-trip and change the hash", () => {
    const base = json();
    const legacy = parseGenesis(base);
    expect(legacy.p2p).toEqual({ secure: "noise", explicit: false });
    expect(genesisToJson(legacy)).not.toHaveProperty("p2p");
    const sm = parseGenesis({ ...base, p2p: { secure: "sm" } });
    const noise = parseGenesis({ ...base, p2p: { secure: "noise" } });
    expect(sm.p2p).toEqual({ secure: "sm", explicit: true });
    const again = parseGenesis(JSON.parse(JSON.stringify(genesisToJson(sm))));
    expect(again.p2p.secure).toBe("sm");
    expect(toHex(encodeGenesis(again))).toBe(toHex(encodeGenesis(sm)));
    const hashes = new Set([legacy, sm, noise].map((g) => toHex(sm3(encodeGenesis(g)))));
    expect(hashes.size).toBe(3);
    // with explicit governance, and without: four distinct encodings
    const gov = { threshold: 1, proposalTtlMs: 60_000 };
    const withGov = parseGenesis({ ...base, governance: gov, p2p: { secure: "sm" } });
    expect(toHex(encodeGenesis(withGov))).not.toBe(toHex(encodeGenesis(sm)));
    expect(() => parseGenesis({ ...base, p2p: { secure: "tls" } })).toThrow(/p2p\.secure/);
    expect(() => parseGenesis({ ...base, p2p: "sm" })).toThrow(/genesis\.p2p/);
  });
});
