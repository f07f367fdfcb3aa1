import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** The built module in a child process: a crash point kills the process it runs in. */
const MODULE = fileURLToPath(new URL("../../dist/crashPoint.js", import.meta.url));

function run(spec: string, script: string) {
  return spawnSync(
    process.execPath,
    ["--input-type=module", "-e", `import * as c from ${JSON.stringify(MODULE)}; ${script}`],
    {
      env: { ...process.env, CUSTOS_CRASH_AT: spec },
      encoding: "utf8",
    },
  );
}

describe("CUSTOS_CRASH_AT", () => {
  it("kills the process with SIGKILL the count-th time it passes the point, and not before", () => {
    const r = run(
      "ledger.commit.afterWrite:2",
      `c.crashPoint("ledger.commit.beforeWrite"); c.crashPoint("ledger.commit.afterWrite"); console.log("passed once"); c.crashPoint("ledger.commit.afterWrite"); console.log("never");`,
    );
    expect(r.signal).toBe("SIGKILL");
    expect(r.stdout).toBe("passed once\n");
    expect(r.stderr).toContain("CUSTOS_CRASH_AT: crashing at ledger.commit.afterWrite");
  });

  it("a point that does not exist stops the node at start (exit 2) instead of running without its crash", () => {
    const r = run("ledger.comit", `c.armCrashPoints(); console.log("started");`);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /CUSTOS_CRASH_AT="ledger.comit" is not <point>\[:<count>\] with a point of ledger\.commit\.beforeWrite/,
    );
  });
});
