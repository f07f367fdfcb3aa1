import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** A developer's first session: custos init --dev, custos node start, then the CLI from another shell. */
const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const EXAMPLE = fileURLToPath(new URL("../../../contracts/sdk/examples/counter.ts", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-cli-chain-"));
const home = join(dir, "h");
let node: ChildProcess;
let rpc: string;
let env: Record<string, string>;

function custos(args: string[], o: { rpc?: boolean; env?: Record<string, string> } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args, ...(o.rpc === false ? [] : ["--rpc", rpc])], {
    encoding: "utf8",
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...env, ...o.env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) };
}

/** With --home: the RPC URL and the demo members' names come from the home. */
const inHome = (args: string[], extra: Record<string, string> = {}) =>
  custos([...args, "--home", home], { rpc: false, env: extra });

const height = () => custos(["status", "--json"]).json().height as number;

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

describe("custos on a dev chain", { timeout: 120_000 }, () => {
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

  it("commands given --home find the running node and take demo members' names", () => {
    // the node listens on a port the kernel chose (--rpc-listen 127.0.0.1:0): run.json says which
    expect(JSON.parse(readFileSync(join(home, "run.json"), "utf8")).rpc).toBe(rpc);
    expect(inHome(["status", "--json"]).json().chainId).toBe("custos-dev");
    const members = inHome(["member", "list", "--json"]).json().members;
    expect(members).toHaveLength(13);
    const c2 = members.find((m: { name: string }) => m.name === "consumer-2");
    expect(c2).toMatchObject({ roles: ["consumer"], ecnyTier: 3 });
    expect(inHome(["member", "list", "--role", "committee"]).stdout).toMatch(/committee-1 .*\n.*committee-2/);
    const before = inHome(["ecny", "balance", "consumer-2", "--json"]).json();
    expect(before.address).toBe(c2.address);
    const issue = inHome([
      "ecny",
      "issue",
      "--key",
      "operator",
      "--to",
      "consumer-2",
      "--amount",
      "12.34",
      "--recharge-id",
      "rc-names",
    ]);
    expect(issue.stderr).toBe("");
    expect(issue.stdout).toMatch(new RegExp(`issued 12.34 yuan to consumer-2 \\(${c2.address}\\)`));
    expect(inHome(["ecny", "balance", "consumer-2", "--json"]).json().balance).toBe(
      String(BigInt(before.balance) + 1234n),
    );
    const unknown = inHome(["ecny", "balance", "consumer-9"]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no such member in .*dev-accounts\.json \(operator, regulator/);
    // names from a list of another chain never resolve against this one
    const other = join(dir, "other-chain.json");
    writeFileSync(
      other,
      JSON.stringify({ chainId: "elsewhere", accounts: [{ name: "x", address: c2.address }] }),
    );
    const wrong = custos(["ecny", "balance", "x"], { env: { CUSTOS_ACCOUNTS: other } });
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toMatch(/ACCOUNTS_OTHER_CHAIN/);
    const noList = custos(["ecny", "balance", "consumer-2"]);
    expect(noList.status).toBe(2);
    expect(noList.stderr).toMatch(/--home DIR .*--dir DIR .*CUSTOS_ACCOUNTS/);
  });

  it("refuses before signing: zero or negative amounts, recipients nobody holds", () => {
    const h0 = height();
    for (const amount of ["0", "0.00", "-1"]) {
      const r = inHome(["ecny", "transfer", "--key", "consumer-1", "--to", "merchant-1", "--amount", amount]);
      expect(r.status, amount).toBe(2);
      expect(r.stderr, amount).toMatch(/--amount .*\(USAGE\)\n$/);
    }
    const nobody = `0x${"ab".repeat(20)}`;
    const r = inHome(["ecny", "transfer", "--key", "consumer-1", "--to", nobody, "--amount", "1"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/neither a member of this chain nor a contract.*\(ECNY_RECIPIENT_NOT_MEMBER\)/);
    expect(height()).toBe(h0); // nothing was signed, nothing committed
  });

  it("speaks yuan in messages about amounts, and every hash it shows has 0x", () => {
    const over = inHome([
      "ecny",
      "transfer",
      "--key",
      "consumer-1",
      "--to",
      "merchant-1",
      "--amount",
      "60000",
    ]);
    expect(over.status).toBe(1);
    expect(over.stderr).toBe(
      "error: transaction failed: 60000.00 yuan exceeds the single-payment limit of 50000.00 yuan for tier 2 (ECNY_SINGLE_LIMIT_EXCEEDED)\n",
    );
    const dup = inHome([
      "ecny",
      "issue",
      "--key",
      "operator",
      "--to",
      "consumer-2",
      "--amount",
      "1",
      "--recharge-id",
      "rc-names",
    ]);
    expect(dup.stderr).toMatch(/already issued in tx 0x[0-9a-f]{64} \(ECNY_DUPLICATE_RECHARGE\)/);
    const json = inHome([
      "ecny",
      "transfer",
      "--key",
      "consumer-1",
      "--to",
      "merchant-1",
      "--amount",
      "60000",
      "--json",
    ]);
    expect(json.json()).toMatchObject({ success: false, errorCode: "ECNY_SINGLE_LIMIT_EXCEEDED" }); // receipt: fen
    expect(JSON.parse(json.stderr)).toEqual({
      error: {
        code: "ECNY_SINGLE_LIMIT_EXCEEDED",
        message:
          "transaction failed: 60000.00 yuan exceeds the single-payment limit of 50000.00 yuan for tier 2",
      },
    });
    const log = readFileSync(join(home, "logs", "node.log"), "utf8");
    const hashes = [...log.matchAll(/"(?:hash|genesisHash|blockHash)":"([^"]*)"/g)].map((m) => m[1]);
    expect(hashes.length).toBeGreaterThan(0);
    for (const h of hashes) expect(h).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it("lists observers and validators from chain state", () => {
    const obs = custos(["observer", "list"]);
    expect(obs.stderr).toBe("");
    expect(obs.stdout).toBe("no observers\n");
    expect(custos(["observer", "list", "--json"]).json()).toEqual({ observers: [] });
    expect(custos(["validator", "list", "--json"]).json().validators).toMatchObject([
      { index: 0, name: "validator-0" },
    ]);
  });

  it("replays past events from a height, then follows live ones", () => {
    const r = inHome([
      "events",
      "--emitter",
      "ecny",
      "--name",
      "Issued",
      "--from-height",
      "0",
      "--count",
      "2",
    ]);
    expect(r.stderr).toBe("");
    const lines = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ emitter: "ecny", name: "Issued", blockHeight: 1 });
    expect(lines[0].txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(lines[1].blockHeight).toBeGreaterThan(1);
    expect(inHome(["events", "--from-height", "x"]).status).toBe(2);
  });

  it("a template submitted by a committee member opens its approval without a vote", () => {
    const r = inHome([
      "template",
      "submit",
      EXAMPLE,
      "--name",
      "counter",
      "--version",
      "1.0.0",
      "--key",
      "committee-1",
      "--json",
    ]);
    expect(r.stderr).toBe("");
    const id = r.json().output.proposalId;
    const p = inHome(["proposal", "show", String(id), "--json"]).json();
    expect(p).toMatchObject({ kind: "template.approve", status: "open", approvals: 0, votes: [] });
    const vote = inHome(["proposal", "vote", String(id), "--approve", "--key", "committee-1"]);
    expect(vote.stdout).toMatch(/open, 1\/2 approvals/);
    expect(inHome(["proposal", "show", String(id)]).stdout).toMatch(
      /approved by committee-1 \(0x[0-9a-f]{40}\)/,
    );
  });

  it("node start refuses clearly when its RPC port is in use", () => {
    const other = join(dir, "h2");
    expect(
      spawnSync(process.execPath, [BIN, "init", "--home", other, "--dev"], { encoding: "utf8" }).status,
    ).toBe(0);
    const port = new URL(rpc).port;
    const r = spawnSync(
      process.execPath,
      [BIN, "node", "start", "--home", other, "--rpc-listen", `127.0.0.1:${port}`],
      {
        encoding: "utf8",
        timeout: 30_000,
      },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `error: cannot listen for RPC on 127.0.0.1:${port}: the port is in use (another node or testnet?); choose another with --rpc-listen HOST:PORT or config.json rpc.listen (RPC_PORT_IN_USE)\n`,
    );
  });

  it("the node stops cleanly on SIGTERM", async () => {
    node.kill("SIGTERM");
    const code = await new Promise((r) => node.once("exit", r));
    expect(code).toBe(0);
    expect(existsSync(join(home, "run.json"))).toBe(false);
    const unreachable = custos(["status"]);
    expect(unreachable.status).toBe(1);
    expect(unreachable.stderr).toMatch(/NODE_UNREACHABLE/);
  });
});
