import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CustosClient, subscribe, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { generateKeyPair, type Sm2KeyPair } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CustosNode, initHome } from "../../src/index.js";
import { tempDir, until } from "../helpers.js";

let node: CustosNode;
let client: CustosClient;
let cleanup: () => Promise<void>;
const keys: Record<string, Sm2KeyPair> = {};
const wallet = (name: string) => new Wallet(client, keys[name] as Sm2KeyPair);

const COUNTER_V1 = `
const { storage, emit, revert, env } = custos;
export function init(params) { storage.set("owner", env.caller); storage.set("step", String(params?.step ?? 1)); }
export function inc() {
  const n = BigInt(storage.get("n") ?? "0") + BigInt(storage.get("step"));
  storage.set("n", n.toString());
  emit("Incremented", { n, by: env.caller });
  return n;
}
export function get() { return BigInt(storage.get("n") ?? "0"); }
export function deposit() { return custos.balanceOf(env.self); }
export function payout(to, amount) {
  if (env.caller !== storage.get("owner")) revert("NOT_OWNER", "only the owner pays out");
  custos.transfer(to, BigInt(amount));
  return custos.balanceOf(env.self);
}
export function spin() { for (;;) {} }
export function dive() { const f = (n) => f(n + 1) + 1; return f(0); }
export function hoard() { const a = []; for (;;) a.push({ a: a.length, b: [a.length] }); }
export function shout() { emit("Huge", "x".repeat(20000)); }
`;
const COUNTER_V2 = `${COUNTER_V1}\nexport function version() { return 2; }\n`;
const COUNTER_V3 = `${COUNTER_V1}\nexport function version() { return 3; }\n`;

async function send(from: string, to: string, method: string, args: unknown[], value = 0n) {
  const r = await wallet(from).send({ to, method, args, value });
  return r.receipt as NonNullable<typeof r.receipt> & { output: any };
}

async function submit(from: string, version: string, code: string) {
  const r = await send(from, "templates", "submit", [
    "counter",
    version,
    "a counter",
    ["demo", "counter"],
    "demo",
    code,
  ]);
  expect(r.errorMessage).toBeNull();
  return r.output as { codeHash: string; proposalId: number };
}

async function query(to: string, method: string, args: unknown[] = []) {
  return client.call(to, method, encode(args)) as Promise<any>;
}

beforeAll(async () => {
  const t = await tempDir("custos-contracts-");
  cleanup = t.cleanup;
  const r = await initHome({ home: t.dir, dev: true, kdfIterations: 1000 });
  const password = (await readFile(join(t.dir, "dev-password"), "utf8")).trim();
  const { loadKeystoreFile } = await import("@custos/crypto");
  for (const a of r.accounts ?? []) keys[a.name] = await loadKeystoreFile(a.keyFile, password);
  keys.outsider = generateKeyPair();
  node = await CustosNode.start({ home: t.dir, rpcListen: "127.0.0.1:0" });
  client = new CustosClient(node.rpcUrl);
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await cleanup?.();
});

describe("templates, governance and VM contracts on a dev chain", () => {
  let v1: { codeHash: string; proposalId: number };
  let address: string;

  it("a template needs the committee threshold before anyone can instantiate it", async () => {
    v1 = await submit("bank", "1.0.0", COUNTER_V1);
    expect(v1.codeHash).toMatch(/^0x[0-9a-f]{64}$/);
    const early = await send("bank", "templates", "instantiate", [v1.codeHash, null]);
    expect(early.errorCode).toBe("TEMPLATE_NOT_APPROVED");
    expect((await send("consumer-1", "governance", "vote", [v1.proposalId, true])).errorCode).toBe(
      "NOT_AUTHORIZED",
    );
    expect((await send("committee-1", "governance", "vote", [v1.proposalId, true])).output.status).toBe(
      "open",
    );
    expect((await send("committee-1", "governance", "vote", [v1.proposalId, true])).errorCode).toBe(
      "ALREADY_VOTED",
    );
    expect((await send("committee-2", "governance", "vote", [v1.proposalId, true])).output.status).toBe(
      "executed",
    );
    const shown = await query("templates", "get", ["counter@1.0.0"]);
    expect(shown.status).toBe("approved");
    expect(shown.proposal.votes.map((v: { voter: string }) => v.voter)).toEqual([
      keys["committee-1"]?.address,
      keys["committee-2"]?.address,
    ]);
    expect((await query("templates", "list", [JSON.stringify({ tag: "counter" })])).length).toBe(1);
    expect((await query("templates", "list", [JSON.stringify({ text: "A COUNTER" })])).length).toBe(1);
    expect(
      (await query("templates", "list", [JSON.stringify({ creator: keys.bank?.address, status: "pending" })]))
        .length,
    ).toBe(0);
  });

  it("an institution instantiates it; a user's call emits an event seen on a WebSocket subscription", async () => {
    expect((await send("consumer-1", "templates", "instantiate", [v1.codeHash, null])).errorCode).toBe(
      "NOT_AUTHORIZED",
    );
    const created = await send("bank", "templates", "instantiate", [
      v1.codeHash,
      JSON.stringify({ step: 5 }),
    ]);
    address = created.output.address;
    expect(address).toMatch(/^0x[0-9a-f]{40}$/);
    const seen: Record<string, unknown>[] = [];
    const sub = await subscribe(node.rpcUrl, "events", { emitter: address, name: "Incremented" }, (e) =>
      seen.push(e),
    );
    try {
      const r = await send("consumer-1", address, "inc", []);
      expect(r.success).toBe(true);
      expect(r.output).toBe("5");
      await until(() => seen.length > 0, 5000);
      expect(seen[0]).toMatchObject({ emitter: address, name: "Incremented" });
      expect(JSON.stringify(seen[0])).toContain(keys["consumer-1"]?.address as string);
    } finally {
      sub.close();
    }
    expect(await query(address, "get")).toBe("5");
    expect((await send("consumer-1", address, "init", [null])).errorCode).toBe("METHOD_NOT_FOUND");
    // the engine is a consensus rule: every node says which one it runs
    expect(((await client.status()) as unknown as { vm: string }).vm).toBe(
      "@jitl/quickjs-wasmfile-release-sync@0.32.0",
    );
  });

  it("runaway contracts fail their own tx with a clear code; the chain goes on", async () => {
    const before = (await client.status()).height;
    const cases: [string, string][] = [
      ["spin", "OUT_OF_GAS"],
      ["dive", "STACK_OVERFLOW"],
      ["hoard", "OUT_OF_MEMORY"],
      ["shout", "EVENT_TOO_LARGE"],
    ];
    for (const [method, code] of cases) {
      const r = await send("consumer-1", address, method, []);
      expect(r.success).toBe(false);
      expect(r.errorCode).toBe(code);
    }
    expect((await client.status()).height).toBeGreaterThanOrEqual(before + 4);
    expect(await query(address, "get")).toBe("5");
  });

  it("attached value goes to the contract's e-CNY balance; payouts follow the contract's rules", async () => {
    await send("operator", "ecny", "issue", [keys["consumer-1"]?.address, 100_000n, "rc-vm-1"]);
    const r = await send("consumer-1", address, "deposit", [], 30_000n);
    expect(r.output).toBe("30000");
    // attached e-CNY is a payment from the sender's wallet: its tier's limits apply (tier 2: 50,000 yuan)
    await send("operator", "ecny", "issue", [keys["consumer-1"]?.address, 6_000_000n, "rc-vm-2"]);
    expect((await send("consumer-1", address, "deposit", [], 5_000_001n)).errorCode).toBe(
      "ECNY_SINGLE_LIMIT_EXCEEDED",
    );
    expect(
      (await send("consumer-1", address, "payout", [keys["merchant-1"]?.address, "100"])).errorCode,
    ).toBe("NOT_OWNER");
    const paid = await send("bank", address, "payout", [keys["merchant-1"]?.address, "10000"]);
    expect(paid.output).toBe("20000");
    expect((await client.ecnyBalance(keys["merchant-1"]?.address as string)).balance).toBe("10000");
    expect((await client.ecnyBalance(address)).balance).toBe("20000");
  });

  it("non-members, expired proposals, vetoes, unapproved upgrades and frozen instances are refused", async () => {
    await expect(send("outsider", "governance", "vote", [v1.proposalId, true])).rejects.toMatchObject({
      code: "TX_SENDER_NOT_MEMBER",
    });

    const v2 = await submit("bank", "1.1.0", COUNTER_V2);
    const upgradeEarly = await send("committee-1", "governance", "propose", [
      "instance.upgrade",
      JSON.stringify({ address, codeHash: v2.codeHash }),
    ]);
    expect(upgradeEarly.errorCode).toBe("TEMPLATE_NOT_APPROVED");
    expect(
      (await send("regulator", "governance", "veto", [v2.proposalId, "unsafe payout rule"])).output.status,
    ).toBe("vetoed");
    expect((await send("committee-1", "governance", "vote", [v2.proposalId, true])).errorCode).toBe(
      "PROPOSAL_CLOSED",
    );
    expect((await query("templates", "get", [v2.codeHash])).status).toBe("vetoed");
    // the same code may come back for a new decision once its approval failed; live code may not
    const again = await submit("bank", "1.1.0", COUNTER_V2);
    expect(again.codeHash).toBe(v2.codeHash);
    expect(again.proposalId).toBeGreaterThan(v2.proposalId);
    const twice = await send("bank", "templates", "submit", ["counter", "1.1.0", "", [], "demo", COUNTER_V2]);
    expect(twice.errorCode).toBe("TEMPLATE_EXISTS");

    const freeze = await send("committee-1", "governance", "propose", [
      "instance.freeze",
      JSON.stringify({ address, reason: "audit" }),
      1,
    ]);
    // a proposal with a one-second life: vote once the clock that stamps blocks has passed its expiry
    const { expiresAt } = await query("governance", "get", [freeze.output.id]);
    await until(() => Date.now() > expiresAt + 10, 10_000);
    expect((await send("committee-2", "governance", "vote", [freeze.output.id, true])).errorCode).toBe(
      "PROPOSAL_EXPIRED",
    );
    expect((await query("governance", "get", [freeze.output.id])).status).toBe("expired");

    const v3 = await submit("bank", "1.2.0", COUNTER_V3);
    await send("committee-1", "governance", "vote", [v3.proposalId, true]);
    await send("committee-3", "governance", "vote", [v3.proposalId, true]);
    const up = await send("committee-1", "governance", "propose", [
      "instance.upgrade",
      JSON.stringify({ address, codeHash: v3.codeHash }),
    ]);
    expect(up.output.status).toBe("open"); // the proposer's own approval: 1 of 2
    expect((await send("committee-2", "governance", "vote", [up.output.id, true])).output.status).toBe(
      "executed",
    );
    expect(await query(address, "version")).toBe(3);
    expect(await query(address, "get")).toBe("5");

    const fr = await send("committee-1", "governance", "propose", [
      "instance.freeze",
      JSON.stringify({ address, reason: "audit" }),
    ]);
    await send("committee-2", "governance", "vote", [fr.output.id, true]);
    const refused = await send("consumer-1", address, "inc", []);
    expect(refused.errorCode).toBe("CONTRACT_FROZEN");
    expect(refused.errorMessage).toContain("audit");
    const info = await query("templates", "instance", [address]);
    expect(info.status).toBe("frozen");
    expect(info.history.map((h: { codeHash: string }) => h.codeHash)).toEqual([v1.codeHash, v3.codeHash]);
  });

  it("members are added and their roles changed by proposal", async () => {
    const newcomer = generateKeyPair();
    keys.newcomer = newcomer;
    await expect(
      send("newcomer", "ecny", "transfer", [keys["consumer-1"]?.address, 1n]),
    ).rejects.toMatchObject({
      code: "TX_SENDER_NOT_MEMBER",
    });
    const p = await send("committee-1", "governance", "propose", [
      "member.add",
      JSON.stringify({
        name: "new-bank",
        publicKey: toHex(newcomer.publicKey),
        roles: ["institution"],
        ecnyTier: 1,
      }),
    ]);
    await send("committee-2", "governance", "vote", [p.output.id, true]);
    expect((await query("members", "get", [newcomer.address])).roles).toEqual(["institution"]);
    const created = await send("newcomer", "templates", "instantiate", [v1.codeHash, null]);
    expect(created.success).toBe(true);
  });

  it("the committee cannot shrink below the approvals a proposal needs", async () => {
    const c3 = keys["committee-3"]?.address;
    const c2 = keys["committee-2"]?.address;
    const out = await send("committee-1", "governance", "propose", [
      "member.remove",
      JSON.stringify({ address: c3 }),
    ]);
    expect((await send("committee-2", "governance", "vote", [out.output.id, true])).output.status).toBe(
      "executed",
    );
    const last = await send("committee-1", "governance", "propose", [
      "member.roles",
      JSON.stringify({ address: c2, roles: ["auditor"] }),
    ]);
    expect(last.errorCode).toBe("COMMITTEE_BELOW_THRESHOLD");
  });
});
