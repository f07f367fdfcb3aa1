import { describe, expect, it } from "vitest";
import { runSeed } from "../../src/sim/simulator.js";

/** 700 seeded runs of 4 validators with every fault kind; a failing seed prints its trace and reproduces exactly. */
describe("simulator, n = 4", () => {
  it("seeds 1..700: safety, validity and liveness hold with f byzantine", () => {
    const failed: string[] = [];
    for (let seed = 1; seed < 1 + 700; seed++) {
      const r = runSeed(seed, 4);
      if (!r.ok) failed.push(`seed ${seed}: ${r.failures.join("; ")}\n${r.trace.slice(-40).join("\n")}`);
    }
    expect(failed, failed.join("\n\n")).toEqual([]);
  }, 240_000);
});
