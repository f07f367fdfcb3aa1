import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * A node whose RPC takes a read-only API key or a member's SM2 signature: the CLI signs its
 * requests with --key when asked (--sign-requests or CUSTOS_SIGN_REQUESTS=1).
 */
const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-cli-signed-"));
const home = join(dir, "h");
const READ_KEY = "auditor-read-key-0123456789";
let node: ChildProcess;
let env: Record<string, string>;

function custos(args: string[], extra: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args, "--home", home], {
    encoding: "utf8",
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...env, ...extra },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(async () => {
  expect(
    spawnSync(process.execPath, [BIN, "init", "--home", home, "--dev"], { encoding: "utf8" }).status,
  ).toBe(0);
  const cfgPath = join(home, "config.json");
  const cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
  cfg.rpc = {
    ...cfg.rpc,
    listen: "127.0.0.1:0",
    apiKeys: [{ name: "auditor", key: READ_KEY, scopes: ["read"] }],
    memberSignatures: { enabled: true, windowMs: 30_000 },
  };
  writeFileSync(cfgPath, JSON.stringify(cfg));
  node = spawn(process.execPath, [BIN, "node", "start", "--home", home], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    node.stdout?.on("data", (d) => {
      out += String(d);
      if (/rpc: \S+/.test(out)) resolve();
    });
    node.once("exit", (c) => reject(new Error(`node exited ${c}`)));
  });
  env = { CUSTOS_PASSWORD: readFileSync(join(home, "dev-password"), "utf8").trim() };
}, 60_000);

afterAll(async () => {
  if (node && node.exitCode === null) {
    node.kill("SIGTERM");
    await new Promise((r) => node.once("exit", r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("the CLI signs its requests with the member's key", { timeout: 120_000 }, () => {
  it("without a key or a signature the node refuses; signed, a member writes; the read key reads", () => {
    const issue = ["ecny", "issue", "--to", "consumer-1", "--amount", "5", "--key", "operator"];
    const refused = custos([...issue, "--recharge-id", "sig-0"]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/UNAUTHORIZED/);
    const ok = custos([...issue, "--recharge-id", "sig-1", "--sign-requests"]);
    expect(ok.stderr).toBe("");
    expect(ok.status).toBe(0);
    const byEnv = custos([...issue, "--recharge-id", "sig-2"], { CUSTOS_SIGN_REQUESTS: "1" });
    expect(byEnv.status).toBe(0);
    const balance = custos(["ecny", "balance", "consumer-1", "--json", "--api-key", READ_KEY]);
    expect(JSON.parse(balance.stdout).balance).toBe("1000");
    // the read key cannot write
    const readOnly = custos([...issue, "--recharge-id", "sig-3", "--api-key", READ_KEY]);
    expect(readOnly.stderr).toMatch(/FORBIDDEN/);
  });

  it("--signer signs read commands; a key that is not a member's is refused by name; CUSTOS_SIGN_REQUESTS signs only where there is a --key", () => {
    expect(
      spawnSync(process.execPath, [BIN, "keygen", "--out", join(dir, "x.json")], {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "", ...env },
      }).status,
    ).toBe(0);
    const stranger = custos(["status", "--signer", join(dir, "x.json")]);
    expect(stranger.status).toBe(1);
    expect(stranger.stderr).toMatch(/SIGNATURE_UNKNOWN_MEMBER/);
    // a read command signed by a member (no API key)
    const auditor = custos(["status", "--json"], { CUSTOS_SIGNER: "auditor" });
    expect(auditor.status).toBe(0);
    expect(JSON.parse(auditor.stdout).chainId).toBe("custos-dev");
    // CUSTOS_SIGN_REQUESTS=1 signs where there is a --key; a read without one goes unsigned
    const unsigned = custos(["ecny", "balance", "consumer-1"], { CUSTOS_SIGN_REQUESTS: "1" });
    expect(unsigned.status).toBe(1);
    expect(unsigned.stderr).toMatch(/UNAUTHORIZED/);
  });
});
