import { describe, expect, it } from "vitest";
import { runProperty } from "../property.js";

/** PREPAID_STEPS and PREPAID_SEEDS make a longer run (README: npm run test:long -w contracts/prepaid-card). */
const STEPS = Number(process.env.PREPAID_STEPS ?? 1500);
const SEEDS = (process.env.PREPAID_SEEDS ?? "1,2,3,4,5,6").split(",").map(Number);

describe("property: the escrow invariant after every step of random walks", () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: ${STEPS} steps`, { timeout: 600_000 }, async () => {
      const r = await runProperty({ seed, steps: STEPS });
      if (r.violation !== null) {
        throw new Error(`seed ${seed}, step ${r.step}: ${r.violation}\n  ${r.trail.join("\n  ")}`);
      }
      console.log(
        `seed ${seed}: ${r.calls} calls, ${r.succeeded} ok, ${r.cards} cards`,
        r.byMethod,
        r.refusals,
      );
      expect(r.step).toBe(STEPS);
    });
  }
});
