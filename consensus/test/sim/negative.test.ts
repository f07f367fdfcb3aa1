import { describe, expect, it } from "vitest";
import { randomConfig, runSeed, Simulation } from "../../src/sim/simulator.js";

describe("the checkers can fail", () => {
  it("with f + 1 byzantine validators (twins and equivocators) some seed breaks safety, reproducibly", () => {
    const kinds = ["twin", "equivocate", "doubleVote"] as const;
    let violating: number | undefined;
    for (let seed = 1; seed <= 200 && violating === undefined; seed++) {
      if (runSeed(seed, 4, 2, kinds).failures.some((f) => f.startsWith("safety"))) violating = seed;
    }
    expect(violating).toBeDefined();
    // the same seed gives the same run: same failure, same trace
    const a = new Simulation(randomConfig(violating as number, 4, 2, kinds)).run();
    const b = new Simulation(randomConfig(violating as number, 4, 2, kinds)).run();
    expect(a.failures).toEqual(b.failures);
    expect(a.trace).toEqual(b.trace);
    expect(a.messages).toBe(b.messages);
  }, 120_000);
});
