import { describe, expect, it } from "vitest";
import { runSeed } from "../../src/sim/simulator.js";

/** 300 seeded runs of 7 validators (f = 2) with every fault kind. */
describe("simulator, n = 7", () => {
  it("seeds 1..300: safety, validity and liveness hold with f byzantine", () => {
    const failed: string[] = [];
    for (let seed = 1; seed < 1 + 300; seed++) {
      const r = runSeed(seed, 7);
      if (!r.ok) failed.push(`seed ${seed}: ${r.failures.join("; ")}\n${r.trace.slice(-40).join("\n")}`);
    }
    expect(failed, failed.join("\n\n")).toEqual([]);
  }, 240_000);
});
