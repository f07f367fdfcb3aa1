import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AuditClient, CustosClient, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile, p2pKeyFromNodeKey, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { P2pNetwork, peersOf } from "@custos/node";
import { parseGenesis } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as testnet from "../../src/index.js";
import { CLI, until } from "../helpers.js";

/**
 * Crash points (issue 17): CUSTOS_CRASH_AT=<point>[:<count>] kills a real node process by
 * SIGKILL exactly there; the restart must keep everything acknowledged and the chain one.
 */
let dir: string;
let t: testnet.TestnetFile;
let clients: CustosClient[];
const keys = new Map<string, Sm2KeyPair>();
const V = [0, 1, 2, 3];

const height = async (i: number) => (await (clients[i] as CustosClient).status()).height;
const wallet = (name: string, node: number) =>
  new Wallet(clients[node] as CustosClient, keys.get(name) as Sm2KeyPair);
const address = (name: string) => (keys.get(name) as Sm2KeyPair).address;
const stopped = async (i: number) => (await testnet.status(dir))[i]?.state === "stopped";
const crashedAt = async (i: number, point: string) =>
  (await readFile(join((t.nodes[i] as testnet.TestnetNode).home, "node.out"), "utf8")).includes(
    `CUSTOS_CRASH_AT: crashing at ${point}`,
  );

async function sameChain(h: number): Promise<void> {
  for (let k = 1; k <= h; k++) {
    const hashes = new Set<string>();
    for (const i of V)
      hashes.add(((await (clients[i] as CustosClient).getBlock(k)) as { hash: string }).hash);
    expect(hashes.size, `height ${k}`).toBe(1);
  }
}

/** Transfers sent one after another through the validators in turn; the blocks of those acknowledged. */
async function transfers(n: number, timeoutMs = 20_000, through = V): Promise<number[]> {
  const acked: number[] = [];
  for (let k = 0; k < n; k++) {
    const via = through[k % through.length] as number;
    try {
      const stx = await wallet("consumer-1", via).build({
        to: "ecny",
        method: "transfer",
        args: [address("merchant-1"), 1n],
      });
      const hash = await (clients[via] as CustosClient).sendRawTx(stx.bytes);
      const v = await (clients[via] as CustosClient).waitForTx(hash, { timeoutMs });
      if (v.blockHeight !== undefined) acked.push(v.blockHeight);
    } catch {
      // a validator crashed under it: not acknowledged
    }
  }
  return acked;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "custos-crash-"));
  t = await testnet.up({
    dir,
    nodes: 4,
    observers: 0,
    basePort: await testnet.freeBasePort(4),
    command: CLI,
    blockIntervalMs: 50,
    consensus: { baseTimeoutMs: 1500, maxTimeoutMs: 10_000 },
  });
  const password = readFileSync(t.passwordFile, "utf8").trim();
  for (const name of ["operator", "consumer-1", "merchant-1"]) {
    const a = t.accounts.find((x) => x.name === name);
    keys.set(name, await loadKeystoreFile(a?.keyFile as string, password));
  }
  clients = t.nodes.map((n) => new CustosClient(n.rpc, { timeoutMs: 5000 }));
  const r = await wallet("operator", 0).send({
    to: "ecny",
    method: "issue",
    args: [address("consumer-1"), 1_000_000n, "crash-1"],
  });
  expect(r.receipt?.success).toBe(true);
}, 120_000);

afterAll(async () => {
  await testnet.down(dir).catch(() => {});
  if (!process.env.KEEP_TMP) await rm(dir, { recursive: true, force: true });
});

describe("crash points on a 4-validator testnet of real processes", () => {
  for (const point of ["ledger.commit.afterWrite", "ledger.commit.beforeWrite"]) {
    it(`every validator dies at once at ${point}: restarted, all at the same height, at least the highest acknowledged`, async () => {
      const before = Math.max(...(await transfers(2)));
      // each validator dies at its second commit from now: the same block on all four
      await Promise.all(V.map((i) => testnet.restart(dir, i, 60_000, { CUSTOS_CRASH_AT: `${point}:2` })));
      const acked = [before, ...(await transfers(4, 8000))];
      await until(async () => (await Promise.all(V.map(stopped))).every(Boolean), 60_000);
      for (const i of V) expect(await crashedAt(i, point), `validator-${i}`).toBe(true);
      await Promise.all(V.map((i) => testnet.restart(dir, i, 60_000)));
      const hs = await Promise.all(V.map(height));
      const highest = Math.max(...acked);
      expect(new Set(hs).size, `heights ${hs.join(",")}`).toBe(1);
      for (const h of hs) expect(h).toBeGreaterThanOrEqual(highest);
      // the chain goes on from there, one chain on every node
      const more = await transfers(1, 30_000);
      expect(more.length).toBe(1);
      const h = Math.max(...(await Promise.all(V.map(height))));
      await until(async () => (await Promise.all(V.map(height))).every((x) => x >= h), 60_000);
      await sameChain(h);
    }, 180_000);
  }

  it("a validator dies between persisting its vote and sending it: restarted, it re-sends and the chain agrees", async () => {
    await testnet.restart(dir, 1, 60_000, { CUSTOS_CRASH_AT: "consensus.persist.beforeSend:3" });
    await transfers(3, 15_000);
    await until(() => stopped(1), 60_000);
    expect(await crashedAt(1, "consensus.persist.beforeSend")).toBe(true);
    await testnet.restart(dir, 1, 60_000);
    expect((await transfers(2, 30_000)).length).toBe(2);
    const h = await height(0);
    await until(async () => (await height(1)) >= h, 60_000);
    await sameChain(h);
  }, 180_000);

  it("a validator dies while storing a synced range: restarted, it syncs the rest to the same hashes", async () => {
    await testnet.kill(dir, 3);
    // the other three commit several blocks meanwhile
    const acked = await transfers(6, 20_000, [0, 1, 2]);
    expect(acked.length).toBe(6);
    await testnet.restart(dir, 3, 60_000, { CUSTOS_CRASH_AT: "sync.store.midRange" });
    await until(() => stopped(3), 60_000);
    expect(await crashedAt(3, "sync.store.midRange")).toBe(true);
    await testnet.restart(dir, 3, 60_000);
    const h = await height(0);
    await until(async () => (await height(3)) >= h, 60_000);
    await sameChain(h);
    // the operator reads in node.log that it synced, from where to where
    const log = await readFile(join((t.nodes[3] as testnet.TestnetNode).home, "logs", "node.log"), "utf8");
    expect(log).toMatch(/"level":"info".*"behind":\d+.*"msg":"block sync started"/);
    expect(log).toMatch(/"level":"info".*"caughtUp":true.*"msg":"block sync finished"/);
  }, 180_000);

  it("a validator dies while writing its audit index: restarted, the index catches up and traces as another node's does", async () => {
    // the index writes once per commit (or per run of blocks while catching up): the second write dies
    await testnet.restart(dir, 2, 60_000, { CUSTOS_CRASH_AT: "audit.index.beforeWrite:2" });
    await transfers(3, 15_000, [0, 1, 3]);
    await until(() => stopped(2), 60_000);
    expect(await crashedAt(2, "audit.index.beforeWrite")).toBe(true);
    await testnet.restart(dir, 2, 60_000);
    const h = await height(0);
    await until(async () => (await height(2)) >= h, 60_000);
    const audit = (i: number) => new AuditClient(clients[i] as CustosClient);
    for (const i of [0, 2]) await until(async () => (await audit(i).status()).indexedHeight >= h, 60_000);
    // the chain is idle: both indexes at the same height give the same trace, fen for fen
    expect((await audit(2).status()).indexedHeight).toBe((await audit(0).status()).indexedHeight);
    const trace = (i: number) => audit(i).trace({ account: address("consumer-1") });
    expect(JSON.stringify(await trace(2))).toBe(JSON.stringify(await trace(0)));
    expect(JSON.stringify(await trace(0))).toContain(address("consumer-1").slice(2, 12));
  }, 180_000);

  // Issue 17 (fuzzing, live): random sync requests over a real connection; a malformed one gets
  // the asker hung up on like any invalid data (testnet.test.ts checks that for consensus frames
  // and gossip; the decoders are fuzzed in node/test/e2e/fuzz.test.ts)
  it("seeded random sync requests over a real libp2p connection: the node answers or hangs up on each, stays up, and the chain goes on as one", async () => {
    await testnet.kill(dir, 3);
    const v3 = t.nodes[3] as testnet.TestnetNode;
    const password = readFileSync(t.passwordFile, "utf8").trim();
    // validator-3's identity: its libp2p key derives from its SM2 node key, which it proves in the
    // national-algorithm handshake the chain's genesis asks for
    const nodeKey = await loadKeystoreFile(join(v3.home, "keys", "node.json"), password);
    const p2pKey = p2pKeyFromNodeKey(nodeKey.privateKey);
    // genesis's peers: the SM2 keys the national-algorithm handshake checks each peer against
    const genesis = parseGenesis(JSON.parse(await readFile(join(dir, "genesis.json"), "utf8")));
    const peers = peersOf(genesis.consensus.validators, genesis.observers);
    const fuzzer = new P2pNetwork(
      {
        seed: p2pKey.seed,
        // validator-3's own address: the peers dial it there (and accept validator-3 from there)
        listen: [v3.p2p.split("/p2p/")[0] as string],
        peers,
        maxMessageBytes: 8 * 1024 * 1024,
        redialMs: 200,
        secure: {
          kind: "sm",
          chainId: t.chainId,
          identity: { publicKey: nodeKey.publicKey, sign: (m) => sm2Sign(nodeKey.privateKey, m) },
        },
      },
      nullLogger,
    );
    // validator-3's port is free once its process is gone; a few tries in case the kernel is slow
    // to let go of it on a loaded machine
    for (let attempt = 0; ; attempt++) {
      try {
        await fuzzer.start();
        break;
      } catch (err) {
        if (attempt >= 10 || !String(err).includes("EADDRINUSE")) throw err;
        await fuzzer.stop().catch(() => {});
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    try {
      await until(() => fuzzer.connectedPeers().some((p) => p.index === 0), 30_000);
      let a = 4242;
      const r = () => {
        a = (Math.imul(a, 1103515245) + 12345) >>> 0;
        return a / 4294967296;
      };
      const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)] as T;
      const junk = () => Uint8Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256));
      const requests = () =>
        pick([
          () =>
            encode([
              1,
              pick(["head", "blocks", "txs", "snapshots", "snapshot", "health", "nope", ""]),
              ...[r() * 1e9, -1, 2 ** 53, junk()].slice(0, Math.floor(r() * 4)),
            ]),
          () => encode([Math.floor(r() * 5), "blocks", Math.floor(r() * 100), Math.floor(r() * 10_000)]),
          () => encode([1, "txs", junk()]),
          () => junk(),
        ])();
      // validator-0's count of peers it hung up on for invalid data
      const hungUp = async () => {
        const text = await (await fetch(`${t.nodes[0]?.rpc}/metrics`)).text();
        const line = text.split("\n").find((l) => l.startsWith("custos_p2p_peers_disconnected_total "));
        return Number(line?.split(" ")[1] ?? Number.NaN);
      };
      const hungUpBefore = await hungUp();
      let answered = 0;
      let refused = 0;
      const end = Date.now() + 5000;
      for (let k = 0; k < 2000 && Date.now() < end; k++) {
        try {
          await fuzzer.request(0, requests(), 4, {
            signal: AbortSignal.timeout(3000),
            maxBytes: 1024 * 1024,
          });
          answered++;
        } catch {
          refused++;
        }
      }
      expect(answered + refused).toBeGreaterThan(20);
      // a malformed request is invalid data: the node hangs up on the asker (refused for a while,
      // then the redialler brings it back), and well-formed ones are answered
      expect(answered).toBeGreaterThan(0);
      expect(await hungUp()).toBeGreaterThan(hungUpBefore);
      expect((await clients[0]?.status())?.height).toBeGreaterThan(0);
      expect((await transfers(2, 30_000, [0, 1, 2])).length).toBe(2);
    } finally {
      await fuzzer.stop();
      // validator-3 back even when a step failed, for the tests after this one
      await testnet.restart(dir, 3, 60_000);
    }
    const h = await height(0);
    await until(async () => (await height(3)) >= h, 60_000);
    await sameChain(h);
  }, 120_000);

  // Issue 17 (disk faults on a testnet): a validator's ledger damaged on disk is refused at start
  // with the cause; the operator's repair (reset-ledger) is reported and ends on the same chain
  it("a validator whose ledger was damaged refuses to start (LEDGER_CORRUPT); after reset-ledger it syncs back to the same chain", async () => {
    const v2 = t.nodes[2] as testnet.TestnetNode;
    expect((await transfers(2, 30_000)).length).toBe(2);
    await testnet.kill(dir, 2);
    const ledger = join(v2.home, "data", "ledger");
    const logs = [];
    for (const f of await readdir(ledger))
      if (f.endsWith(".log")) logs.push({ f, size: (await stat(join(ledger, f))).size });
    const log = logs.sort((x, y) => y.size - x.size)[0]?.f as string;
    const bytes = await readFile(join(ledger, log));
    expect(bytes.length).toBeGreaterThan(200);
    for (let i = 100; i < bytes.length; i += 397) bytes[i] = (bytes[i] as number) ^ 0xff;
    await writeFile(join(ledger, log), bytes);
    const refused = await testnet.restart(dir, 2, 60_000).catch((e) => e);
    expect(refused?.code).toBe("TESTNET_NODE_EXITED");
    expect(String(refused?.message)).toContain("LEDGER_CORRUPT");
    // the other three went on meanwhile
    expect((await transfers(1, 30_000, [0, 1, 3])).length).toBe(1);
    const reset = spawnSync(CLI[0] as string, [CLI[1] as string, "node", "reset-ledger", "--home", v2.home], {
      encoding: "utf8",
    });
    expect(reset.status, reset.stderr).toBe(0);
    await testnet.restart(dir, 2, 60_000);
    const h = await height(0);
    await until(async () => (await height(2)) >= h, 60_000);
    await sameChain(h);
  }, 120_000);
});
