import { afterAll, describe, expect, it } from "vitest";
import { runProperty } from "../property.js";

/** PREPAID_STEPS and PREPAID_SEEDS make a longer run (README: `npm run test:long -w contracts/prepaid-card`). */
const STEPS = Number(process.env.PREPAID_STEPS ?? 1500);
const SEEDS = (process.env.PREPAID_SEEDS ?? "1,2,3,4,5,6").split(",").map(Number);

/** Every state-changing method: a walk in which some never succeed proves little about them. */
const METHODS = [
  "addProduct",
  "retireProduct",
  "setPrice",
  "clearPrice",
  "setCategory",
  "buy",
  "consume",
  "refund",
  "transferCard",
  "reportLost",
  "cancelLoss",
  "reissue",
  "freeze",
  "unfreeze",
  "forceRefund",
  "announceClosure",
  "claim",
  "settle",
  "remind",
];
const succeeded = new Set<string>();

describe("property: the escrow invariant after every step of random walks", () => {
  for (const seed of SEEDS) {
    it(`seed ${seed}: ${STEPS} steps`, { timeout: 3_600_000 }, async () => {
      const r = await runProperty({ seed, steps: STEPS });
      if (r.violation !== null) {
        throw new Error(`seed ${seed}, step ${r.step}: ${r.violation}\n  ${r.trail.join("\n  ")}`);
      }
      console.log(
        `seed ${seed}: ${r.calls} calls, ${r.succeeded} succeeded, ${r.cards} cards; ${JSON.stringify(r.byMethod)}`,
      );
      expect(r.step).toBe(STEPS);
      for (const m of ["buy", "consume", "refund", "claim"]) expect(r.byMethod[m] ?? 0, m).toBeGreaterThan(0);
      for (const m of Object.keys(r.byMethod)) succeeded.add(m);
    });
  }
  afterAll(() => {
    if (STEPS >= 1000 && SEEDS.length >= 4) expect(METHODS.filter((m) => !succeeded.has(m))).toEqual([]);
  });
});
