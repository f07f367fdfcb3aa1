import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A developer's first session: custos init --dev, custos node start, then the CLI from another shell. */
const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-cli-chain-"));
const home = join(dir, "h");
let node: ChildProcess;
let rpc: string;
let env: Record<string, string>;

function custos(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args, "--rpc", rpc], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

beforeAll(async () => {
  const init = spawnSync(process.execPath, [BIN, "init", "--home", home, "--dev", "--json"], {
    encoding: "utf8",
  });
  expect(init.status).toBe(0);
  node = spawn(process.execPath, [BIN, "node", "start", "--home", home, "--rpc-listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  rpc = await new Promise<string>((resolve, reject) => {
    let out = "";
    node.stdout?.on("data", (d) => {
      out += String(d);
      const m = /rpc: (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
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

describe("custos on a dev chain", () => {
  it("init wrote the dev accounts file shaped like testnet.json's accounts", () => {
    const dev = JSON.parse(readFileSync(join(home, "dev-accounts.json"), "utf8"));
    expect(dev.passwordFile).toBe(join(home, "dev-password"));
    expect(dev.accounts.map((a: { role: string }) => a.role)).toEqual(
      expect.arrayContaining([
        "operator",
        "regulator",
        "committee",
        "institution",
        "merchant",
        "consumer",
        "auditor",
      ]),
    );
    const again = spawnSync(process.execPath, [BIN, "init", "--home", home, "--dev"], { encoding: "utf8" });
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/HOME_EXISTS/);
  });

  it("issue, transfer and balance add up; failures exit non-zero with their code", () => {
    const dev = JSON.parse(readFileSync(join(home, "dev-accounts.json"), "utf8"));
    const acct = (name: string) => dev.accounts.find((a: { name: string }) => a.name === name);
    const [op, c1, m1, reg] = [acct("operator"), acct("consumer-1"), acct("merchant-1"), acct("regulator")];
    const issue = custos([
      "ecny",
      "issue",
      "--to",
      c1.address,
      "--amount",
      "1000.50",
      "--recharge-id",
      "rc-1",
      "--key",
      op.keyFile,
      "--json",
    ]);
    expect(issue.status).toBe(0);
    expect(issue.json()).toMatchObject({ success: true, events: [{ emitter: "ecny", name: "Issued" }] });
    expect(
      custos([
        "ecny",
        "issue",
        "--to",
        c1.address,
        "--amount",
        "1",
        "--recharge-id",
        "rc-1",
        "--key",
        op.keyFile,
      ]).stderr,
    ).toMatch(/ECNY_DUPLICATE_RECHARGE/);
    const t = custos([
      "ecny",
      "transfer",
      "--to",
      m1.address,
      "--amount",
      "200.25",
      "--key",
      c1.keyFile,
      "--json",
    ]);
    expect(t.status).toBe(0);
    expect(custos(["ecny", "balance", c1.address, "--json"]).json()).toEqual({
      address: c1.address,
      balance: "80025",
      frozen: null,
    });
    expect(custos(["ecny", "balance", m1.address, "--json"]).json().balance).toBe("20025");
    const over = custos(["ecny", "transfer", "--to", m1.address, "--amount", "900", "--key", c1.keyFile]);
    expect(over.status).toBe(1);
    expect(over.stderr).toMatch(/ECNY_INSUFFICIENT_BALANCE/);
    expect(
      custos(["ecny", "transfer", "--to", m1.address, "--amount", "1.234", "--key", c1.keyFile]).status,
    ).toBe(2);
    expect(custos(["ecny", "freeze", c1.address, "--reason", "test", "--key", reg.keyFile]).status).toBe(0);
    const frozen = custos(["ecny", "transfer", "--to", m1.address, "--amount", "1", "--key", c1.keyFile]);
    expect(frozen.stderr).toMatch(/ECNY_ACCOUNT_FROZEN/);
    expect(custos(["ecny", "unfreeze", c1.address, "--key", reg.keyFile]).status).toBe(0);
    expect(custos(["ecny", "balance", c1.address, "--json"]).json()).toEqual({
      address: c1.address,
      balance: "80025",
      frozen: null,
    });
  });

  it("status, block get, tx get and tx wait give what scripts need", () => {
    const s = custos(["status", "--json"]).json();
    expect(s).toMatchObject({ chainId: "custos-dev", role: "validator", view: 0, peers: 0 });
    expect(s.height).toBeGreaterThan(0);
    const b = custos(["block", "get", String(s.height), "--json"]).json();
    expect(b).toMatchObject({ height: s.height, hash: s.latestHash });
    expect(b.certificate.signatures).toHaveLength(1);
    expect(Object.keys(b)).toEqual(
      expect.arrayContaining(["hash", "height", "prevHash", "stateRoot", "txCount", "certificate"]),
    );
    expect(custos(["block", "get", b.hash, "--json"]).json().height).toBe(s.height);
    const txHash = b.txs[0];
    expect(custos(["tx", "get", txHash, "--json"]).json()).toMatchObject({
      status: "committed",
      blockHeight: s.height,
    });
    expect(custos(["tx", "wait", txHash, "--json"]).status).toBe(0);
    const nf = custos(["tx", "get", `0x${"00".repeat(32)}`]);
    expect(nf.status).toBe(1);
    expect(nf.stderr).toMatch(/TX_NOT_FOUND/);
    expect(custos(["block", "get", "99999"]).stderr).toMatch(/BLOCK_NOT_FOUND/);
  });

  it("the node stops cleanly on SIGTERM", async () => {
    node.kill("SIGTERM");
    const code = await new Promise((r) => node.once("exit", r));
    expect(code).toBe(0);
    const unreachable = custos(["status"]);
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toMatch(/NODE_UNREACHABLE/);
  });
});
