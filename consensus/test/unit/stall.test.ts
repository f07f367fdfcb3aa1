import { describe, expect, it } from "vitest";
import { type Effect, PbftEngine } from "../../src/engine.js";
import { Simulation } from "../../src/sim/simulator.js";
import { BASE, testCrypto } from "../harness.js";

describe("liveness after a stall", () => {
  it("a leader with nothing to propose asks again when transactions come", () => {
    const e = new PbftEngine(
      {
        chainId: "harness",
        self: 0,
        baseTimeoutMs: BASE,
        maxTimeoutMs: 8 * BASE,
        maxViewAhead: 64,
        maxMessageBytes: 64 * 1024,
        keepDecisions: 16,
      },
      testCrypto(0),
    );
    const asks = (fx: Effect[]) => fx.filter((x) => x.type === "requestProposal").length;
    e.step({ type: "start", height: 1, validators: 1 });
    expect(asks(e.step({ type: "work" }))).toBe(1);
    e.step({ type: "noProposal", height: 1, view: 0 }); // the pool emptied in between
    expect(asks(e.step({ type: "work" }))).toBe(1);
  });

  // Issue 11: two of four validators paused past several view timeouts while clients send to the
  // other two (which cannot commit alone), then resumed. Whichever validator leads the view they
  // then agree on, the chain must commit within about one round: the paused ones lost the
  // transactions' gossip, so a pending transaction is announced again, and a leader that had
  // nothing when its view's quorum came proposes once it has.
  const pairs = [
    [1, 2],
    [0, 1],
    [2, 3],
    [0, 3],
    [0, 2],
    [1, 3],
  ];
  for (const pair of pairs) {
    it(`validators ${pair.join(" and ")} stalled for 20 timeouts: a commit within 4 timeouts of resuming`, () => {
      for (let seed = 1; seed <= 8; seed++) {
        const pauseAt = 400;
        const resume = pauseAt + 20 * BASE;
        const sim = new Simulation({
          seed,
          n: 4,
          byzantine: new Map(),
          durationMs: resume + 40 * BASE,
          delay: [1, 20],
          loss: 0,
          duplicate: 0,
          partitions: [],
          crashes: [],
          pauses: [{ nodes: pair, atMs: pauseAt, resumeMs: resume }],
          stallBound: true,
          pool: {
            everyMs: 25,
            fromMs: pauseAt + 1,
            untilMs: resume,
            submitTo: [0, 1, 2, 3].filter((i) => !pair.includes(i)),
            regossipMs: BASE,
          },
          baseTimeoutMs: BASE,
        });
        const r = sim.run();
        expect(r.failures, `seed ${seed}\n${r.trace.slice(-30).join("\n")}`).toEqual([]);
        expect(Math.min(...r.heights)).toBeGreaterThan(0);
      }
    });
  }
});
