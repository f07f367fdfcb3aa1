import { execFile } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { CustosClient, type ReceiptView, subscribe, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import type { Sm2KeyPair } from "@custos/crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as testnet from "../../src/index.js";
import { CLI, type RunningTestnet, startTestnet, until } from "../helpers.js";

/**
 * Issue 6 on a real testnet (4 validator processes + 1 observer): a TypeScript contract goes
 * through the CLI (bundled, submitted as a template), the committee approves it, an institution
 * instantiates it, a user's call raises an event on a WebSocket subscription; runaway contracts
 * fail their own transactions with the same gas on every node and on an observer that replays
 * the chain from zero; and a fifth validator is added, then a genesis validator removed, by
 * proposal, while the chain runs.
 */
const EXAMPLE = new URL("../../../contracts/sdk/examples/counter.ts", import.meta.url).pathname;
const run = promisify(execFile);
let net: RunningTestnet;
let dir: string;
let t: testnet.TestnetFile;
let password: string;
let clients: CustosClient[];
let keys: Map<string, Sm2KeyPair>;

async function cli(...args: string[]): Promise<any> {
  const [cmd, ...pre] = CLI;
  const { stdout } = await run(cmd as string, [...pre, ...args, "--json"], {
    env: { ...process.env, CUSTOS_PASSWORD: password },
  });
  return JSON.parse(stdout);
}

const keyFile = (name: string) => t.accounts.find((a) => a.name === name)?.keyFile as string;

async function send(from: string, node: number, to: string, method: string, args: unknown[]) {
  const r = await new Wallet(clients[node] as CustosClient, keys.get(from) as Sm2KeyPair).send({
    to,
    method,
    args,
  });
  return { hash: r.hash, ...(r.receipt as ReceiptView & { output: any }) };
}

const query = (node: number, to: string, method: string, args: unknown[] = []) =>
  (clients[node] as CustosClient).call<any>(to, method, encode(args));

async function approve(proposalId: number, voters: string[]) {
  for (const v of voters) await send(v, 0, "governance", "vote", [proposalId, true]);
}

/** A new node started with --join, proposed by `proposer` and approved by `voter`. */
async function addByProposal(role: "validator" | "observer", proposer: string, voter: string) {
  const added = await testnet.addNode(dir, { role });
  const index = clients.push(new CustosClient(added.node.rpc)) - 1;
  const proposal = await send(proposer, 0, "governance", "propose", [
    `${role}.add`,
    JSON.stringify({
      name: added.node.name,
      publicKey: added.publicKey,
      peerId: added.peerId,
      p2p: [added.listen],
    }),
  ]);
  await approve(proposal.output.id, [voter]);
  return { added, index, proposal };
}

beforeAll(async () => {
  net = await startTestnet("custos-gov-", 2);
  ({ dir, t, password, clients, keys } = net);
}, 90_000);

afterAll(async () => {
  await net?.stop();
});

describe("contracts and governance on a 4-validator testnet", () => {
  let counter: string;
  let runaway: string;
  const failedTxs: string[] = [];

  it("author -> template -> two approvals -> instance -> call -> event on a WebSocket", async () => {
    const rpc = ["--rpc", t.nodes[1]?.rpc as string];
    const submitted = await cli(
      "template",
      "submit",
      EXAMPLE,
      "--name",
      "counter",
      "--version",
      "1.0.0",
      "--description",
      "per-caller counter",
      "--tags",
      "demo",
      "--category",
      "demo",
      "--key",
      keyFile("bank"),
      ...rpc,
    );
    const proposalId = submitted.output.proposalId as number;
    expect(submitted.output.codeHash).toMatch(/^0x[0-9a-f]{64}$/);
    await expect(
      cli("template", "instantiate", "counter@1.0.0", "--key", keyFile("bank"), ...rpc),
    ).rejects.toThrow(/TEMPLATE_NOT_APPROVED/);
    await approve(proposalId, ["committee-1", "committee-2"]);
    const inst = await cli(
      "template",
      "instantiate",
      "counter@1.0.0",
      "--params",
      '{"step":2}',
      "--key",
      keyFile("service-institution"),
      ...rpc,
    );
    counter = inst.output.address;
    const events: Record<string, unknown>[] = [];
    const sub = await subscribe(t.nodes[2]?.rpc as string, "events", { emitter: counter }, (e) =>
      events.push(e),
    );
    try {
      const r = await send("consumer-1", 3, counter, "increment", []);
      expect(r.success).toBe(true);
      expect(r.output).toBe(2);
      await until(() => events.length > 0, 10_000);
      expect(events[0]).toMatchObject({ emitter: counter, name: "Incremented" });
    } finally {
      sub.close();
    }
    // every node, the observer included, once it has the block
    const h = (await (clients[3] as CustosClient).status()).height;
    await until(async () =>
      (await Promise.all(clients.map((c) => c.status()))).every((st) => st.height >= h),
    );
    for (const i of [0, 1, 2, 3, 4])
      expect(await query(i, counter, "countOf", [keys.get("consumer-1")?.address])).toBe(2);
  }, 60_000);

  it("runaway contracts fail their own tx; blocks commit; gas is the same on every node", async () => {
    const source = join(dir, "runaway.ts");
    await writeFile(
      source,
      [
        'import { emit } from "@custos/contract-sdk";',
        "export function spin(): void { for (;;) {} }",
        "export function dive(): number { const f = (n: number): number => f(n + 1) + 1; return f(0); }",
        "export function hoard(): void { const a: unknown[] = []; for (;;) a.push({ n: a.length, s: [a.length] }); }",
        'export function shout(): void { emit("Huge", "x".repeat(20000)); }',
        "export function fine(): number { return 1; }",
      ].join("\n"),
    );
    const s = await cli(
      "template",
      "submit",
      source,
      "--name",
      "runaway",
      "--version",
      "0.1.0",
      "--key",
      keyFile("bank"),
      "--rpc",
      t.nodes[0]?.rpc as string,
    );
    await approve(s.output.proposalId, ["committee-2", "committee-3"]);
    runaway = (await send("bank", 0, "templates", "instantiate", [s.output.codeHash, null])).output.address;
    for (const [method, code] of [
      ["spin", "OUT_OF_GAS"],
      ["dive", "STACK_OVERFLOW"],
      ["hoard", "OUT_OF_MEMORY"],
      ["shout", "EVENT_TOO_LARGE"],
    ] as const) {
      const r = await send("consumer-2", 1, runaway, method, []);
      expect(r.errorCode).toBe(code);
      failedTxs.push(r.hash);
    }
    expect((await send("consumer-2", 2, runaway, "fine", [])).output).toBe(1);
    const h = (await (clients[0] as CustosClient).status()).height;
    await until(async () =>
      (await Promise.all(clients.map((c) => c.status()))).every((st) => st.height >= h),
    );
    for (const hash of failedTxs) {
      const gas = new Set<string>();
      for (const c of clients) gas.add(((await c.getTx(hash)).receipt as ReceiptView).gasUsed);
      expect(gas.size).toBe(1);
    }
  }, 90_000);

  it("an observer that replays the chain from zero gets the same receipts", async () => {
    const obs = t.nodes.findIndex((n) => n.role === "observer");
    const before = await Promise.all(
      failedTxs.map(async (hash) => (await (clients[0] as CustosClient).getTx(hash)).receipt),
    );
    await testnet.kill(dir, obs);
    await rm(join(t.nodes[obs]?.home as string, "data"), { recursive: true, force: true });
    await testnet.restart(dir, obs);
    const target = (await (clients[0] as CustosClient).status()).height;
    await until(async () => (await (clients[obs] as CustosClient).status()).height >= target, 60_000);
    const after = await Promise.all(
      failedTxs.map(async (hash) => (await (clients[obs] as CustosClient).getTx(hash)).receipt),
    );
    expect(after).toEqual(before);
    expect(await query(obs, counter, "countOf", [keys.get("consumer-1")?.address])).toBe(2);
  }, 90_000);

  it("a fifth validator is added by proposal and signs blocks; a genesis validator is removed", async () => {
    const { added, index: fifth, proposal } = await addByProposal("validator", "committee-1", "committee-3");
    expect(proposal.output.status).toBe("open"); // the proposer's approval alone: 1 of 2
    // the sixth node of the testnet (index 5) on the documented ports: RPC base+5, libp2p base+105
    const base = Number(new URL(t.nodes[0]?.rpc as string).port);
    expect(added.node.rpc).toBe(`http://127.0.0.1:${base + 5}`);
    expect(added.listen).toBe(`/ip4/127.0.0.1/tcp/${base + 105}`);
    await until(
      async () => ((await (clients[fifth] as CustosClient).status()) as any).validating === true,
      60_000,
    );
    expect((await query(0, "validators", "list")).validators.map((v: { name: string }) => v.name)).toEqual([
      "validator-0",
      "validator-1",
      "validator-2",
      "validator-3",
      added.node.name,
    ]);
    // with validator-0 down, 4 of 5 are a quorum only with the new validator's signature
    await testnet.kill(dir, 0);
    const r = await send("operator", 1, "ecny", "issue", [keys.get("consumer-3")?.address, 100n, "gov-1"]);
    expect(r.success).toBe(true);
    const block = (await (clients[1] as CustosClient).getBlock("latest")) as any;
    expect(block.certificate.signatures.map((s: { validator: number }) => s.validator)).toContain(4);
    await testnet.restart(dir, 0);

    const hungUp = async (i: number) => {
      const text = await (await fetch(`${t.nodes[i]?.rpc}/metrics`)).text();
      return Number(
        text
          .split("\n")
          .find((l) => l.startsWith("custos_p2p_peers_disconnected_total "))
          ?.split(" ")[1],
      );
    };
    const hungUpBefore = await hungUp(3);
    const rm1 = await send("committee-2", 1, "governance", "propose", [
      "validator.remove",
      JSON.stringify({ name: "validator-1" }),
    ]);
    await approve(rm1.output.id, ["committee-1"]);
    await until(
      async () => ((await (clients[1] as CustosClient).status()) as any).validating === false,
      30_000,
    );
    // validator-1 is out: the other four commit without it, and with one of them down too
    await testnet.kill(dir, 1);
    await testnet.kill(dir, 2);
    const r2 = await send("operator", 3, "ecny", "issue", [keys.get("consumer-3")?.address, 100n, "gov-2"]);
    expect(r2.success).toBe(true);
    const st = (await (clients[3] as CustosClient).status()) as any;
    expect(st.validators).toBe(4);
    // indices moved (validator-2 from 2 to 1, ...): nobody honest was taken for a liar; a failure
    // shows whom validator-3 hung up on and why, from its log
    const why = (await readFile(join(t.nodes[3]?.home as string, "logs", "node.log"), "utf8").catch(() => ""))
      .split("\n")
      .filter((l) => l.includes("disconnecting"))
      .join("\n");
    expect(await hungUp(3), why).toBe(hungUpBefore);
  }, 180_000);

  it("an observer replaying from zero crosses both validator-set changes", async () => {
    const obs = t.nodes.findIndex((n) => n.role === "observer");
    await testnet.kill(dir, obs);
    await rm(join(t.nodes[obs]?.home as string, "data"), { recursive: true, force: true });
    await testnet.restart(dir, obs);
    const head = await (clients[3] as CustosClient).getBlock("latest");
    await until(
      async () => (await (clients[obs] as CustosClient).status()).height >= (head as any).height,
      60_000,
    );
    expect(((await (clients[obs] as CustosClient).getBlock((head as any).height)) as any).hash).toBe(
      (head as any).hash,
    );
    expect(((await (clients[obs] as CustosClient).status()) as any).validators).toBe(4);
  }, 90_000);

  it("an observer added by proposal is let in, syncs, serves reads and refuses writes", async () => {
    const { index: obs, added } = await addByProposal("observer", "committee-3", "committee-2");
    const list = await cli("observer", "list", "--rpc", t.nodes[3]?.rpc as string);
    expect(list.observers.map((o: { name: string }) => o.name)).toEqual(["observer-0", added.node.name]);
    expect(list.observers[1]).toMatchObject({ publicKey: added.publicKey, peerId: added.peerId });
    const target = (await (clients[0] as CustosClient).status()).height;
    await until(async () => (await (clients[obs] as CustosClient).status()).height >= target, 60_000);
    expect(await query(obs, counter, "countOf", [keys.get("consumer-1")?.address])).toBe(2);
    await expect(send("consumer-1", obs, counter, "increment", [])).rejects.toMatchObject({
      code: "OBSERVER_READ_ONLY",
    });
  }, 90_000);
});
