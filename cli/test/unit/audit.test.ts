import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

/** `custos audit` and `custos complaint` refuse wrong command lines before asking any node. */
const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-cli-audit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function custos(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: "utf8",
    // nothing listens here: a command that asked a node would fail with NODE_UNREACHABLE instead
    env: { PATH: process.env.PATH ?? "", CUSTOS_RPC: "http://127.0.0.1:9" },
    input: "",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("custos audit and complaint command lines", { timeout: 60_000 }, () => {
  it("wrong ones exit 2 with USAGE, saying what is wrong", () => {
    const cases: [string[], RegExp][] = [
      [["audit", "trace"], /trace what: --account ADDR, --programme ADDR, or --card ID --programme ADDR/],
      [["audit", "trace", "--account", "0x12"], /--account must be an address/],
      [["audit", "trace", "--programme", `0x${"a".repeat(40)}`, "--card", "x"], /--card takes a card id/],
      [
        ["audit", "trace", "--account", `0x${"a".repeat(40)}`, "--from", "soon"],
        /--from "soon": give a date/,
      ],
      [
        ["audit", "report", "--date", "2026-05-01", "--from", "2026-05-01"],
        /--date, or --from\/--to, not both/,
      ],
      [["audit", "report", "--threshold", "1.234"], /--threshold takes yuan/],
      [["audit", "report", "--section", "totals"], /--section is one of merchants/],
      [
        ["audit", "trace", "--account", `0x${"a".repeat(40)}`, "--format", "pdf"],
        /--format is table, json or csv/,
      ],
      [
        ["audit", "export", "--report", "--account", `0x${"a".repeat(40)}`, "--out", "x.json"],
        /--report exports a report/,
      ],
      [["audit", "verify", "x.json"], /required option '--genesis <file>'/],
      [
        ["complaint", "file", "--programme", `0x${"a".repeat(40)}`, "--category", "other", "--key", "k.json"],
        /exactly one of --details FILE/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = custos(args);
      expect([r.status, r.stderr], args.join(" ")).toEqual([2, expect.stringMatching(re)]);
      expect(r.stderr).toMatch(/\(USAGE\)\n$/);
    }
  });

  it("verify names the file it cannot use: an invalid genesis, a missing one", () => {
    writeFileSync(join(dir, "genesis.json"), "{}");
    const missing = custos(["audit", "verify", "nope.json", "--genesis", "genesis.json"]);
    expect([missing.status, missing.stderr]).toEqual([1, expect.stringMatching(/GENESIS_INVALID/)]);
    const json = custos(["audit", "verify", "nope.json", "--genesis", "nope-genesis.json", "--json"]);
    expect(JSON.parse(json.stderr)).toEqual({
      error: { code: "FILE_NOT_READABLE", message: "cannot read nope-genesis.json (the genesis)" },
    });
  });
});
