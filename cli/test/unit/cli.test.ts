import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

/** Runs the built `custos` command as a user would, in its own process. */
const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function custos(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: "utf8",
    env: {
      PATH: process.env.PATH ?? "",
      ...(process.env.CUSTOS_SM2_BACKEND ? { CUSTOS_SM2_BACKEND: process.env.CUSTOS_SM2_BACKEND } : {}),
      ...env,
    },
    input: "",
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const pwFile = join(dir, "pw");
writeFileSync(pwFile, "s3cret passphrase\n");
const FAST = ["--kdf-iterations", "2000"];

describe("custos keys, sign and verify", { timeout: 120_000 }, () => {
  it("keygen writes an owner-only keystore and prints the address and public key as JSON", () => {
    const r = custos(["keygen", "--out", "alice.json", "--password-file", pwFile, "--json", ...FAST]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.address).toMatch(/^0x[0-9a-f]{40}$/);
    expect(doc.publicKey).toMatch(/^0[23][0-9a-f]{64}$/);
    expect(statSync(join(dir, "alice.json")).mode & 0o777).toBe(0o600);
    const show = JSON.parse(custos(["key", "show", "alice.json", "--json"]).stdout);
    expect(show.address).toBe(doc.address);
    expect(show.publicKeyUncompressed).toMatch(/^04[0-9a-f]{128}$/);
  });

  it("sign then verify: exit 0 for the signed data, 1 for other data", () => {
    writeFileSync(join(dir, "evidence.txt"), "contract #17, signed by the merchant\n");
    const sig = custos(["sign", "--key", "alice.json", "--in", "evidence.txt"], {
      CUSTOS_PASSWORD: "s3cret passphrase",
    });
    expect(sig.status).toBe(0);
    expect(sig.stdout.trim()).toMatch(/^[0-9a-f]{128}$/);
    const pub = JSON.parse(custos(["key", "show", "alice.json", "--json"]).stdout).publicKey;
    const ok = custos(["verify", "--pub", pub, "--sig", sig.stdout.trim(), "--in", "evidence.txt", "--json"]);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).valid).toBe(true);
    const bad = custos(["verify", "--pub", pub, "--sig", sig.stdout.trim(), "--hex", "00"]);
    expect(bad.status).toBe(1);
    expect(bad.stdout.trim()).toBe("invalid");
    // a hex signature over hex data round-trips too, with the uncompressed key
    const s2 = custos([
      "sign",
      "--key",
      "alice.json",
      "--password-file",
      pwFile,
      "--hex",
      "0xdeadbeef",
    ]).stdout.trim();
    const unc = JSON.parse(custos(["key", "show", "alice.json", "--json"]).stdout).publicKeyUncompressed;
    expect(custos(["verify", "--pub", unc, "--sig", s2, "--hex", "deadbeef"]).status).toBe(0);
  });

  it("errors are one line on stderr with a stable code, and nothing is written", () => {
    const wrong = join(dir, "wrong");
    writeFileSync(wrong, "nope");
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [
        ["sign", "--key", "alice.json", "--password-file", wrong, "--hex", "00"],
        {},
        1,
        /KEYSTORE_BAD_PASSWORD/,
      ],
      [["sign", "--key", "alice.json", "--hex", "00"], {}, 1, /NO_PASSWORD/],
      [["sign", "--key", "missing.json", "--hex", "00"], { CUSTOS_PASSWORD: "x" }, 1, /FILE_NOT_READABLE/],
      [["sign", "--key", "alice.json", "--hex", "zz"], { CUSTOS_PASSWORD: "x" }, 2, /USAGE/],
      [
        ["sign", "--key", "alice.json", "--hex", "00", "--in", "x"],
        { CUSTOS_PASSWORD: "x" },
        2,
        /exactly one/,
      ],
      [["verify", "--pub", "00", "--sig", "00", "--hex", "00"], {}, 1, /^$/],
      [["keygen", "--out", "alice.json", ...FAST], { CUSTOS_PASSWORD: "x" }, 1, /FILE_EXISTS/],
      [["keygen", "--out", "b.json", "--kdf-iterations", "0"], { CUSTOS_PASSWORD: "x" }, 2, /USAGE/],
      [["key", "show", "evidence.txt"], {}, 1, /KEYSTORE_INVALID/],
      // commander's own errors: one line with the USAGE code too
      [["nonsense"], {}, 2, /^error: unknown command 'nonsense'; see custos --help \(USAGE\)$/],
      [
        ["statu"],
        {},
        2,
        /^error: unknown command 'statu'; Did you mean status\?; see custos --help \(USAGE\)$/,
      ],
      [["status", "--bogus"], {}, 2, /^error: unknown option '--bogus'; see custos status --help \(USAGE\)$/],
      [
        ["ecny", "transfer", "--to", "x"],
        {},
        2,
        /^error: required option '--key <file>' not specified; see custos ecny transfer --help \(USAGE\)$/,
      ],
      [
        ["block", "get"],
        {},
        2,
        /^error: missing required argument 'ref'; see custos block get --help \(USAGE\)$/,
      ],
    ];
    const before = readFileSync(join(dir, "alice.json"), "utf8");
    for (const [args, env, status, err] of cases) {
      const r = custos(args, env);
      expect(r.status, args.join(" ")).toBe(status);
      expect(r.stderr.trimEnd(), args.join(" ")).toMatch(err);
      if (status !== 0) expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
    expect(readFileSync(join(dir, "alice.json"), "utf8")).toBe(before);
    expect(() => statSync(join(dir, "b.json"))).toThrow();
  });
});

describe("errors with --json", { timeout: 120_000 }, () => {
  it("are one JSON document {error: {code, message}} on stderr, with the same exit status", () => {
    const cases: [string[], number, string, RegExp][] = [
      [["nonsense", "--json"], 2, "USAGE", /^unknown command 'nonsense'/],
      [["ecny", "transfer", "--json"], 2, "USAGE", /^required option '--key <file>' not specified/],
      [["key", "show", "evidence.txt", "--json"], 1, "KEYSTORE_INVALID", /./],
      [["ecny", "balance", "0x12", "--json"], 2, "USAGE", /address/],
      [["status", "--rpc", "http://127.0.0.1:1", "--json"], 1, "NODE_UNREACHABLE", /127\.0\.0\.1:1/],
    ];
    for (const [args, status, code, message] of cases) {
      const r = custos(args);
      expect(r.status, args.join(" ")).toBe(status);
      expect(r.stdout, args.join(" ")).toBe("");
      expect(r.stderr.endsWith("\n") && r.stderr.trim().split("\n").length === 1, args.join(" ")).toBe(true);
      const doc = JSON.parse(r.stderr);
      expect(Object.keys(doc), args.join(" ")).toEqual(["error"]);
      expect(doc.error.code, args.join(" ")).toBe(code);
      expect(doc.error.message, args.join(" ")).toMatch(message);
    }
  });
});

describe("custos doctor", () => {
  it("reports the Node version, the active SM2 backend and measured rates", () => {
    const r = custos(["doctor", "--json", "--ms", "60"]);
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.node.supported).toBe(true);
    expect(["native", "js"]).toContain(doc.sm2.backend);
    if (process.env.CUSTOS_SM2_BACKEND) expect(doc.sm2.backend).toBe(process.env.CUSTOS_SM2_BACKEND);
    expect(doc.sm2.selfTest).toBe("passed");
    expect(doc.sm2.verifyPerSec).toBeGreaterThan(0);
    expect(doc.sm2.poolVerifyPerSec).toBeGreaterThan(0);
  });

  it("says clearly when a forced backend is unknown", () => {
    const r = custos(["doctor", "--ms", "50"], { CUSTOS_SM2_BACKEND: "fast" });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/CUSTOS_SM2_BACKEND must be "native", "js" or "auto".*CONFIG_INVALID/);
  });
});
