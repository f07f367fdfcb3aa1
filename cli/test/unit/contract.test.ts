import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleContract } from "@custos/contract-sdk/harness";
import { afterAll, describe, expect, it } from "vitest";

const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const EXAMPLE = fileURLToPath(new URL("../../../contracts/sdk/examples/counter.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-contract-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function custos(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: dir, encoding: "utf8", input: "" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("custos contract build", () => {
  it("gives the same bundle and code hash as the SDK harness, wherever the file lives", async () => {
    const elsewhere = join(dir, "a", "b");
    cpSync(EXAMPLE, join(dir, "counter.ts"));
    mkdirSync(elsewhere, { recursive: true });
    cpSync(EXAMPLE, join(elsewhere, "counter.ts"));
    const r = custos(["contract", "build", "counter.ts", "--out", "counter.js", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.codeHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(readFileSync(join(dir, "counter.js"), "utf8")).not.toMatch(/^import /m);
    expect((await bundleContract(join(elsewhere, "counter.ts"))).codeHash).toBe(doc.codeHash);
  });

  it("a contract that does not compile, a missing file and bad --args fail with a clear error", () => {
    writeFileSync(join(dir, "broken.ts"), "export function f( {");
    const broken = custos(["contract", "build", "broken.ts"]);
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/CONTRACT_BUILD_FAILED/);
    expect(broken.stderr).toMatch(/broken\.ts:1/);
    expect(custos(["contract", "build", "missing.ts"]).status).toBe(1);
    const args = custos([
      "contract",
      "call",
      `0x${"1".repeat(40)}`,
      "f",
      "--args",
      "{nope",
      "--key",
      "k.json",
    ]);
    expect(args.status).toBe(2);
    expect(args.stderr).toMatch(/--args must be JSON/);
  });
});
