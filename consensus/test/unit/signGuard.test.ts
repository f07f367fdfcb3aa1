import { sm3 } from "@custos/crypto";
import { describe, expect, it } from "vitest";
import { type Effect, PbftEngine, type SignGuard } from "../../src/engine.js";
import { compareVotePositions, type VotePosition } from "../../src/messages.js";
import { simBlock } from "../../src/sim/simulator.js";
import { BASE, testCrypto } from "../harness.js";

/** A guard that remembers the last admitted vote, as the node's sign-state does. */
function memoryGuard(last: VotePosition & { digest: Uint8Array }): SignGuard & { refused: number } {
  return {
    refused: 0,
    admit(vote, digest) {
      const c = compareVotePositions(vote, last);
      if (c < 0 || (c === 0 && Buffer.compare(digest, last.digest) !== 0)) {
        this.refused++;
        return false;
      }
      last = { ...vote, digest };
      return true;
    },
  };
}

const opts = {
  chainId: "harness",
  self: 0,
  baseTimeoutMs: BASE,
  maxTimeoutMs: 8 * BASE,
  maxViewAhead: 64,
  maxMessageBytes: 64 * 1024,
  keepDecisions: 16,
};

describe("the sign guard", () => {
  it("a replica that lost its WAL does not sign, send or count a vote below what it signed before", () => {
    // it signed a commit at height 1, view 2 before its WAL was lost; now it starts at height 1 again
    const guard = memoryGuard({ height: 1, view: 2, phase: 3, digest: new Uint8Array(32).fill(9) });
    const e = new PbftEngine(opts, testCrypto(0), guard);
    e.step({ type: "start", height: 1, validators: 1 });
    e.step({ type: "work" });
    const block = simBlock(1, 0, 1);
    const fx: Effect[] = e.step({ type: "proposal", height: 1, view: 0, block });
    expect(fx.filter((x) => x.type === "persist" || x.type === "broadcast")).toEqual([]);
    expect(fx.filter((x) => x.type === "refused").length).toBeGreaterThan(0);
    expect(fx.some((x) => x.type === "commit")).toBe(false); // its own refused votes were not counted
    expect(guard.refused).toBeGreaterThan(0);
  });

  it("lets the same vote out again and every later one, with their places on the persist effect", () => {
    const guard = memoryGuard({ height: 0, view: 0, phase: 0, digest: new Uint8Array(32) });
    const e = new PbftEngine(opts, testCrypto(0), guard);
    e.step({ type: "start", height: 1, validators: 1 });
    e.step({ type: "work" });
    const block = simBlock(1, 0, 1);
    const fx = e.step({ type: "proposal", height: 1, view: 0, block });
    const persisted = fx.flatMap((x) => (x.type === "persist" ? [x.vote] : []));
    expect(persisted.map((v) => v.phase)).toEqual([1, 2, 3]);
    for (const v of persisted) expect(Buffer.from(v.digest).equals(Buffer.from(sm3(block)))).toBe(true);
    expect(fx.some((x) => x.type === "commit")).toBe(true);
  });
});
