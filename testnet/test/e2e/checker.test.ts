import { describe, expect, it } from "vitest";
import { CI_FAULTS, check, netnsSupport, schedule } from "../../src/index.js";
import { CLI } from "../helpers.js";

/**
 * Issue 17's CI slice of the checker: one seed on a testnet of 4 validator processes, each in a
 * network namespace of its own where the machine allows it (CI runs as root: the kernel drops the
 * partition's and the lossy link's packets), their peers talking through the link proxy, with a partition that leaves the next proposer in the minority, a
 * lossy link, kill -9 of every validator and a pause of two, while transfers run through every
 * validator. A failure prints the seed's steps and the one command that runs it again.
 */
const SEED = Number(process.env.CUSTOS_CHECK_SEED ?? 17);

describe("the checker (Jepsen-style) on a real testnet with network faults", () => {
  it("a seed's schedule is a function of the seed and covers every fault asked for", () => {
    expect(schedule(SEED, CI_FAULTS, 4)).toEqual(schedule(SEED, CI_FAULTS, 4));
    expect(new Set(schedule(SEED, CI_FAULTS, 4))).toEqual(new Set(CI_FAULTS));
    expect(schedule(1, CI_FAULTS, 8).slice(4).sort()).toEqual([...CI_FAULTS].sort());
  });

  it(`seed ${SEED}: partition with the leader in the minority, a lossy link, kill -9 of all, pause of two: nothing acknowledged lost, one chain, e-CNY conserved`, async () => {
    const lines: string[] = [];
    const r = await check({
      seed: SEED,
      command: CLI,
      faults: CI_FAULTS,
      holdMs: 3000,
      log: (l) => lines.push(l),
    });
    const report = `${lines.join("\n")}\n${r.failures.join("\n")}\nreproduce: ${r.reproduce}`;
    expect(r.failures, report).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.steps.map((s) => s.fault).sort(), report).toEqual([...CI_FAULTS].sort());
    expect(r.steps.find((s) => s.fault === "partition-leader")?.did, report).toMatch(/in the minority/);
    expect(r.acknowledged, report).toBeGreaterThan(0);
    expect(r.lost).toEqual([]);
    // where namespaces can be made they are used: the faults were the kernel's, not only the proxy's
    if (netnsSupport().ok) expect(r.network, report).toMatch(/^network namespaces/);
    expect(r.longestRecoverMs).toBeLessThan(30_000);
  }, 240_000);
});
