import { expect, it } from "vitest";
import { runSeed } from "../../src/sim/simulator.js";

/**
 * Runs seeds [from, from + count) with n validators (f byzantine of random kinds, random network
 * faults, partitions and crashes). A failure names the seed, what broke and the end of its trace;
 * `npm run sim -- --nodes N --seed S --trace` reproduces it exactly.
 */
export function seedRange(n: number, from: number, count: number): void {
  it(`n = ${n}, seeds ${from}..${from + count - 1}: safety, validity and liveness hold with f byzantine`, () => {
    const failed: string[] = [];
    for (let seed = from; seed < from + count; seed++) {
      const r = runSeed(seed, n);
      if (!r.ok) failed.push(`seed ${seed}: ${r.failures.join("; ")}\n${r.trace.slice(-40).join("\n")}`);
    }
    expect(failed, failed.join("\n\n")).toEqual([]);
  }, 240_000);
}
