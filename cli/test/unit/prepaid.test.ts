import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PrepaidDemo, setUpPrepaidDemo } from "@custos/testnet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * `custos prepaid` on a laptop chain (custos init --dev, one validator) with the testnet's
 * prepaid-card demo set up on it: what the CLI itself decides (usage errors before anything is
 * signed, programme names, an agreed price, options that do not fit a card), forced refunds that
 * stop at a frozen wallet and go on from where they stopped, and `check` catching e-CNY that the
 * programme cannot account for. The whole journey on a 4-validator testnet is
 * testnet/test/e2e/prepaid.test.ts and the README.
 */
const BIN = fileURLToPath(new URL("../../bin/custos.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "custos-cli-prepaid-"));
const home = join(dir, "h");
let node: ChildProcess;
let demo: PrepaidDemo;
let env: Record<string, string>;

/** custos ... --home h: the node of the home, its demo members by name. */
function custos(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args, "--home", home], {
    encoding: "utf8",
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...env },
  });
  return {
    status: r.status,
    stdout: r.stdout,
    stderr: r.stderr,
    json: () => JSON.parse(r.stdout),
    error: () => JSON.parse(r.stderr).error as { code: string; message: string },
  };
}

const height = () => custos(["status", "--json"]).json().height as number;
const gym = ["--programme", "sunrise-gym"];

beforeAll(async () => {
  expect(
    spawnSync(process.execPath, [BIN, "init", "--home", home, "--dev"], { encoding: "utf8" }).status,
  ).toBe(0);
  node = spawn(process.execPath, [BIN, "node", "start", "--home", home, "--rpc-listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const rpc = await new Promise<string>((resolve, reject) => {
    let out = "";
    node.stdout?.on("data", (d) => {
      out += String(d);
      const m = /rpc: (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    node.once("exit", (c) => reject(new Error(`node exited ${c}`)));
  });
  const password = readFileSync(join(home, "dev-password"), "utf8").trim();
  env = { CUSTOS_PASSWORD: password };
  const accounts = JSON.parse(readFileSync(join(home, "dev-accounts.json"), "utf8")).accounts;
  demo = await setUpPrepaidDemo({ rpc, accounts, password });
}, 90_000);

afterAll(async () => {
  if (node && node.exitCode === null) {
    node.kill("SIGTERM");
    await new Promise((r) => node.once("exit", r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("custos prepaid on a laptop chain", { timeout: 120_000 }, () => {
  it("a wrong command line exits 2 (USAGE) before anything is signed", () => {
    const before = height();
    for (const args of [
      ["prepaid", "buy", ...gym, "--product", "one", "--key", "consumer-1"],
      ["prepaid", "consume", "first", ...gym, "--key", "consumer-1"],
      ["prepaid", "product", "add", "voucher", "--name", "x", ...gym, "--key", "merchant-1"],
      ["prepaid", "product", "add", "count", "--name", "x", "--uses", "3", ...gym, "--key", "merchant-1"],
      ["prepaid", "product", "add", "stored", "--name", "x", "--uses", "3", ...gym, "--key", "merchant-1"],
      [
        "prepaid",
        "product",
        "add",
        "count",
        "--name",
        "x",
        "--uses",
        "3",
        "--price",
        "1.001",
        ...gym,
        "--key",
        "merchant-1",
      ],
      [
        "prepaid",
        "open",
        "--merchant",
        "merchant-1",
        "--name",
        "x",
        "--escrow-share",
        "101",
        "--key",
        "bank",
      ],
      [
        "prepaid",
        "open",
        "--merchant",
        "merchant-1",
        "--name",
        "x",
        "--refund-fee",
        "5.125",
        "--key",
        "bank",
      ],
      [
        "prepaid",
        "open",
        "--merchant",
        "merchant-1",
        "--name",
        "x",
        "--issuer-class",
        "huge",
        "--key",
        "bank",
      ],
      ["prepaid", "force-refunds", ...gym, "--batch", "101", "--key", "regulator"],
      ["prepaid", "transfer", "1", ...gym, "--to", "nobody-here", "--key", "consumer-1"],
    ]) {
      const r = custos([...args, "--json"]);
      expect(r.status, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.error().code).toBe("USAGE");
    }
    expect(height()).toBe(before);
  });

  it("a programme is its address or its name; anything else is PROGRAMME_NOT_FOUND", () => {
    const address = demo.programmes[0]?.address as string;
    for (const p of ["sunrise-gym", "Sunrise Gym", address]) {
      const info = custos(["prepaid", "programme", "--programme", p, "--json"]);
      expect(info.status).toBe(0);
      expect(info.json()).toMatchObject({ address, name: "Sunrise Gym", status: "active" });
    }
    const unknown = custos(["prepaid", "products", "--programme", "moon-spa", "--json"]);
    expect(unknown.status).toBe(1);
    expect(unknown.error().code).toBe("PROGRAMME_NOT_FOUND");
    expect(unknown.error().message).toMatch(
      /bright-future-school, sunrise-gym|sunrise-gym, bright-future-school/,
    );
    const member = custos(["ecny", "balance", "consumer-1", "--json"]).json().address;
    const notOne = custos(["prepaid", "products", "--programme", member, "--json"]);
    expect(notOne.error().code).toBe("PROGRAMME_NOT_FOUND");
    const list = custos(["prepaid", "programmes", "--json"]).json().programmes;
    expect(list.map((p: { slug: string }) => p.slug)).toEqual(["bright-future-school", "sunrise-gym"]);
  });

  it("a price other than the one agreed is refused before signing; options must fit the card", () => {
    const before = height();
    const changed = custos([
      "prepaid",
      "buy",
      ...gym,
      "--product",
      "1",
      "--price",
      "299",
      "--key",
      "consumer-1",
      "--json",
    ]);
    expect(changed.status).toBe(1);
    expect(changed.error()).toMatchObject({ code: "PRICE_CHANGED" });
    expect(changed.error().message).toMatch(/300\.00 yuan .* not the 299\.00 yuan agreed/);
    const open = custos([
      "prepaid",
      "buy",
      "--programme",
      "bright-future-school",
      "--product",
      "2",
      "--key",
      "consumer-1",
    ]);
    expect(open.status).toBe(2);
    expect(open.stderr).toMatch(/open-amount card: give --amount \(100\.00 to 5000\.00 yuan\)/);
    expect(height()).toBe(before);

    const stored = custos([
      "prepaid",
      "buy",
      "--programme",
      "bright-future-school",
      "--product",
      "1",
      "--key",
      "consumer-1",
      "--json",
    ]);
    expect(stored.json()).toMatchObject({
      success: true,
      card: { id: 1, kind: "stored", paid: "95000", units: "100000" },
    });
    const uses = custos([
      "prepaid",
      "consume",
      "1",
      "--programme",
      "bright-future-school",
      "--uses",
      "2",
      "--key",
      "consumer-1",
    ]);
    expect(uses.status).toBe(2);
    expect(uses.stderr).toMatch(/stored-value card: give --amount, not --uses/);
    const spent = custos([
      "prepaid",
      "consume",
      "1",
      "--programme",
      "bright-future-school",
      "--amount",
      "60",
      "--key",
      "consumer-1",
    ]);
    expect(spent.status).toBe(0);
    // the first use ends cooling-off: the 30 % not escrowed goes to the merchant, and 70 % of 60 yuan used
    expect(spent.stdout).toMatch(
      /^card 1: 60\.00 yuan spent; 940\.00 of 1000\.00 yuan left; 324\.90 yuan released to the merchant$/m,
    );
    const pass = custos(["prepaid", "buy", ...gym, "--product", "2", "--key", "consumer-1", "--json"]).json();
    expect(pass.card).toMatchObject({ kind: "period", paid: "19900", coolingOff: true });
    expect(
      custos(["prepaid", "consume", `${pass.card.id}`, ...gym, "--uses", "2", "--key", "consumer-1"]).status,
    ).toBe(2);
  });

  it("forced refunds stop at a holder's frozen wallet and go on from there", () => {
    for (const who of ["consumer-2", "consumer-3"])
      expect(custos(["prepaid", "buy", ...gym, "--product", "1", "--key", who, "--json"]).status).toBe(0);
    // cards 1 (consumer-1's monthly pass), 2 and 3 are live; consumer-2's wallet is frozen by the regulator
    expect(
      custos(["ecny", "freeze", "consumer-2", "--reason", "court order", "--key", "regulator"]).status,
    ).toBe(0);
    expect(custos(["prepaid", "freeze", ...gym, "--reason", "audit", "--key", "regulator"]).status).toBe(0);
    const stopped = custos([
      "prepaid",
      "force-refunds",
      ...gym,
      "--batch",
      "1",
      "--key",
      "regulator",
      "--json",
    ]);
    expect(stopped.status).toBe(1);
    expect(stopped.error().code).toBe("ECNY_ACCOUNT_FROZEN");
    expect(stopped.json()).toMatchObject({
      success: false,
      errorCode: "ECNY_ACCOUNT_FROZEN",
      after: 1,
      done: false,
    });
    expect(stopped.json().batches).toHaveLength(1);
    const human = custos([
      "prepaid",
      "force-refunds",
      ...gym,
      "--batch",
      "1",
      "--after",
      "1",
      "--key",
      "regulator",
    ]);
    expect(human.status).toBe(1);
    expect(human.stdout).toMatch(/batch 1 \(after card 1\) failed: .*; continue with --after 1/);
    expect(custos(["ecny", "unfreeze", "consumer-2", "--key", "regulator"]).status).toBe(0);
    const rest = custos([
      "prepaid",
      "force-refunds",
      ...gym,
      "--batch",
      "1",
      "--after",
      "1",
      "--key",
      "regulator",
      "--json",
    ]);
    expect(rest.status).toBe(0);
    expect(rest.json()).toMatchObject({ refunded: 2, amount: "60000", done: true });
    expect(custos(["prepaid", "escrow", ...gym, "--json"]).json()).toMatchObject({
      escrowed: "0",
      liveCards: 0,
    });
  });

  it("check finds e-CNY a programme cannot account for", () => {
    const ok = custos(["prepaid", "check", "--json"]);
    expect(ok.status).toBe(0);
    expect(ok.json().programmes.map((p: { ok: boolean }) => p.ok)).toEqual([true, true]);
    const address = demo.programmes[1]?.address as string;
    // a plain payment to the programme, outside buy: money that is no card's and not the merchant's
    expect(custos(["ecny", "transfer", "--to", address, "--amount", "1", "--key", "consumer-3"]).status).toBe(
      0,
    );
    const broken = custos(["prepaid", "check", "--json"]);
    expect(broken.status).toBe(1);
    expect(broken.error()).toMatchObject({ code: "PREPAID_INVARIANT_BROKEN" });
    expect(broken.error().message).toMatch(/Bright Future School/);
    const school = broken.json().programmes.find((p: { address: string }) => p.address === address);
    expect(school).toMatchObject({ ok: false, surplus: "100", contractOk: false });
    expect(school.problems[0]).toMatch(/balance .* fen in the e-CNY ledger != escrowed/);
    const one = custos(["prepaid", "check", "--programme", "bright-future-school"]);
    expect(one.status).toBe(1);
    expect(one.stdout).toMatch(/Bright Future School 0x[0-9a-f]{40} at height \d+: BROKEN/);
    expect(custos(["prepaid", "check", "--programme", "sunrise-gym"]).status).toBe(0);
  });
});
