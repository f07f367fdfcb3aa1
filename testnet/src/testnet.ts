import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { CustosClient } from "@custos/client";
import { createDevMembers, type DevAccount, devGenesis, initHome, spreadWriteBuffers } from "@custos/node";
import { genesisToJson, type P2pSecure } from "@custos/types";
import { CustosError, errorMessage, portFree, sleep } from "@custos/utils";
import {
  applyControl,
  type LinkControl,
  LinkProxy,
  type LinkSettings,
  type LinkState,
  linkPort,
  MAX_FAULT_NODES,
  partitionCuts,
  readControl,
  readLinkState,
} from "./links.js";
import {
  applyKernelFaults,
  createNetwork,
  destroyNetwork,
  ensureNamespace,
  faceIp,
  inNamespace,
  kernelDrops,
  type NetnsLayout,
  netnsSupport,
  networkExists,
  nodeIp,
  planLayout,
} from "./netns.js";

export interface TestnetNode {
  name: string;
  role: "validator" | "observer";
  rpc: string;
  p2p: string;
  pid: number;
  home: string;
  /** Added after genesis (custos testnet add-node): started with --join. */
  join?: boolean;
}

/** DIR/testnet.json (DESIGN.md §9), plus the command that runs a node so that any later CLI call can restart one. */
export interface TestnetFile {
  chainId: string;
  passwordFile: string;
  nodes: TestnetNode[];
  accounts: DevAccount[];
  command: string[];
  /** Node i listens for RPC on basePort + i and for libp2p on basePort + 100 + i (added nodes too). */
  basePort?: number;
  /**
   * With --faults: the link proxy process (links.ts); node i dials node j on basePort + 200 + i * n + j.
   * `fallback`: why the nodes are not in network namespaces (everything on 127.0.0.1 then).
   */
  links?: { pid: number; nodes: number; fallback?: string };
  /** The nodes run in network namespaces of their own (netns.ts), on this subnet. */
  netns?: NetnsLayout;
}

export interface UpOptions {
  dir: string;
  /** Validators (at least 1). */
  nodes: number;
  observers: number;
  /** Node i gets RPC port basePort + i and libp2p port basePort + 100 + i. */
  basePort: number;
  /** How to run `custos`: e.g. [process.execPath, "/path/to/cli/bin/custos.js"]. */
  command: string[];
  chainId?: string;
  blockIntervalMs?: number;
  maxBlockTxs?: number;
  /** How the nodes secure their connections (genesis p2p.secure): national algorithms by default. */
  p2pSecure?: P2pSecure;
  /** An existing testnet in `dir` is started again instead of refused. */
  reuse?: boolean;
  /** How long to wait for every node's RPC and for the validators to connect. */
  timeoutMs?: number;
  /** Settings merged into every node's config.json (e.g. `{ audit: { index: false } }` for a benchmark). */
  nodeConfig?: Record<string, unknown>;
  /** Peers dial each other through a fault-injecting proxy (links.ts): partitions, cuts, slow links. */
  faults?: boolean;
  /**
   * With `faults`: each node in a network namespace of its own where the machine allows it (root,
   * Linux, iproute2), the kernel doing cuts, loss and bandwidth (the default); false keeps them on
   * 127.0.0.1 with the proxy doing everything.
   */
  netns?: boolean;
  /** config.json consensus settings for every node (e.g. shorter view timeouts for a checker). */
  consensus?: { baseTimeoutMs?: number; maxTimeoutMs?: number; maxClockDriftMs?: number };
}

export interface NodeStatus {
  index: number;
  name: string;
  role: "validator" | "observer";
  pid: number;
  state: "running" | "paused" | "stopped";
  rpc: string;
  height?: number;
  latestHash?: string;
  view?: number;
  peers?: number;
  syncing?: boolean;
  error?: string;
}

/** Testnet keys are test keys: fewer PBKDF2 rounds than production keystores (600,000) so that up stays quick. */
const TESTNET_KDF_ITERATIONS = 20_000;

let tmpSeq = 0;
/** Read-modify-write of testnet.json one at a time within this process (parallel restarts). */
let fileLock: Promise<unknown> = Promise.resolve();
function withFileLock<T>(fn: () => Promise<T>): Promise<T> {
  const run = fileLock.then(fn, fn);
  fileLock = run.catch(() => {});
  return run;
}

const fileOf = (dir: string) => join(dir, "testnet.json");

const exists = async (path: string): Promise<boolean> => existsSync(path);

export async function readTestnet(dir: string): Promise<TestnetFile> {
  let json: TestnetFile;
  try {
    json = JSON.parse(await readFile(fileOf(dir), "utf8"));
  } catch (cause) {
    throw new CustosError(
      "TESTNET_NOT_FOUND",
      `no testnet in ${dir} (${fileOf(dir)} is missing or unreadable); start one with custos testnet up --dir ${dir}`,
      {},
      { cause },
    );
  }
  if (!Array.isArray(json.nodes) || !Array.isArray(json.command))
    throw new CustosError("TESTNET_INVALID", `${fileOf(dir)} is not a testnet file`);
  return json;
}

async function writeTestnet(dir: string, t: TestnetFile): Promise<void> {
  // a name of its own: restarts of several nodes at once each write the file
  const tmp = `${fileOf(dir)}.${process.pid}.${++tmpSeq}.tmp`;
  await writeFile(tmp, `${JSON.stringify(t, null, 2)}\n`);
  await rename(tmp, fileOf(dir));
}

/**
 * A base port at which `count` nodes find their RPC (base + i) and libp2p (base + 100 + i) ports
 * free. Below Linux's ephemeral range (32768 and up), so that no outgoing connection takes a
 * node's port while the node is down (a restarted node must get its port back).
 */
export async function freeBasePort(
  count: number,
  from = 20_000,
  span = 12_000,
  /** Also the link proxy's ports (up --faults): base + 200 .. base + 200 + count * count. */
  faults = false,
): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = from + Math.floor(Math.random() * span);
    const ports = Array.from({ length: count }, (_, i) => [base + i, base + 100 + i]).flat();
    if (faults) for (let k = 0; k < count * count; k++) ports.push(base + 200 + k);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new CustosError("TESTNET_PORT_BUSY", `no free range of ports for ${count} nodes`);
}

/**
 * The state of a node's process: the pid must still be a node of this home (pids get reused).
 * A process on its way out has an empty command line while its sockets may still be open (the
 * kernel drops its memory before its files, and its threads exit one by one): it counts as
 * running until it is a zombie without threads, so that kill and stop return only once its
 * ports are free again.
 */
function processState(n: TestnetNode): NodeStatus["state"] {
  if (!n.pid) return "stopped";
  try {
    const stat = readFileSync(`/proc/${n.pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    // a zombie leader whose other threads are still exiting still holds the process's files
    if (state === "Z" || state === "X")
      return readdirSync(`/proc/${n.pid}/task`).length > 1 ? "running" : "stopped";
    const cmdline = readFileSync(`/proc/${n.pid}/cmdline`, "utf8");
    if (cmdline === "") {
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      return comm === basename(process.execPath).slice(0, 15) ? "running" : "stopped";
    }
    // the exact "--home HOME" arguments: validator-1 must not match validator-10
    if (!cmdline.includes(`\0--home\0${n.home}\0`)) return "stopped";
    return state === "T" || state === "t" ? "paused" : "running";
  } catch {
    if (process.platform === "linux") return "stopped";
    try {
      process.kill(n.pid, 0);
      return "running";
    } catch {
      return "stopped";
    }
  }
}

function tail(path: string, lines = 5): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function spawnNode(t: TestnetFile, n: TestnetNode, env?: Record<string, string>): number {
  // in its namespace: `ip netns exec` becomes the node's process (it execs), same pid
  const [cmd, ...args] = t.netns ? [...inNamespace(t.netns, t.nodes.indexOf(n)), ...t.command] : t.command;
  const out = openSync(join(n.home, "node.out"), "a");
  try {
    const child = spawn(
      cmd as string,
      [
        ...args,
        "node",
        "start",
        "--home",
        n.home,
        ...(n.role === "observer" ? ["--observer"] : []),
        ...(n.join ? ["--join"] : []),
      ],
      { detached: true, stdio: ["ignore", out, out], env: { ...process.env, ...(env ?? {}) } },
    );
    child.once("error", () => {}); // a failed spawn has no pid: reported below, not as a crash
    child.unref();
    if (!child.pid) throw new CustosError("TESTNET_SPAWN_FAILED", `cannot start ${n.name} with ${cmd}`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

async function waitReady(n: TestnetNode, deadline: number): Promise<void> {
  const client = new CustosClient(n.rpc, { timeoutMs: 1000 });
  for (;;) {
    if (processState(n) === "stopped")
      throw new CustosError(
        "TESTNET_NODE_EXITED",
        `${n.name} exited while starting:\n${tail(join(n.home, "node.out"))}`,
      );
    try {
      await client.status();
      return;
    } catch {
      if (Date.now() > deadline)
        throw new CustosError("TESTNET_TIMEOUT", `${n.name} did not answer on ${n.rpc} in time`);
      await sleep(200);
    }
  }
}

async function waitConnected(t: TestnetFile, deadline: number): Promise<void> {
  for (const n of t.nodes.filter((x) => x.role === "validator" && processState(x) === "running")) {
    const client = new CustosClient(n.rpc, { timeoutMs: 1000 });
    // validators only: a connection to an observer does not make consensus possible; the set is
    // the chain's (governance may have changed it), and a node outside it waits for nobody
    const connected = async () => {
      const s = (await client.status().catch(() => ({}))) as {
        validatorPeers?: number;
        validators?: number;
        validating?: boolean;
      };
      if (s.validating === false) return true;
      return (s.validatorPeers ?? -1) >= (s.validators ?? Number.POSITIVE_INFINITY) - 1;
    };
    while (!(await connected())) {
      if (Date.now() > deadline)
        throw new CustosError("TESTNET_TIMEOUT", `${n.name} did not connect to the other validators in time`);
      await sleep(200);
    }
  }
}

/**
 * Creates a testnet in `dir` (keys, genesis, demo members with their keystores, one home per
 * node) and starts one process per node; with `reuse`, an existing testnet there is started
 * again. Returns when every node answers on RPC and the validators are connected.
 */
export async function up(o: UpOptions): Promise<TestnetFile> {
  const dir = resolve(o.dir);
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  if (await exists(fileOf(dir))) {
    if (!o.reuse)
      throw new CustosError(
        "TESTNET_EXISTS",
        `${dir} already holds a testnet: use custos testnet status|down|restart, pass --reuse to start it again, or remove the directory`,
      );
    const t = await readTestnet(dir);
    // the nodes it starts run the custos that runs this (an upgraded checkout, a moved one), not
    // the one the testnet was made with: that one may be gone or older
    t.command = o.command;
    if (t.netns && !(await networkExists(t.netns))) {
      // down took the namespaces away: the same ones again (the same addresses, from testnet.json)
      await createNetwork(t.netns);
      for (let i = t.netns.nodes; i < t.nodes.length; i++) await ensureNamespace(t.netns, i);
    }
    if (t.links && !proxyRunning(dir, t)) await startProxy(dir, t);
    for (const n of t.nodes) if (processState(n) === "stopped") n.pid = spawnNode(t, n);
    await writeTestnet(dir, t);
    for (const n of t.nodes) await waitReady(n, deadline);
    await waitConnected(t, deadline);
    return t;
  }
  if (!Number.isInteger(o.nodes) || o.nodes < 1 || o.nodes > 64)
    throw new CustosError("USAGE", "--nodes takes 1 to 64 validators");
  if (!Number.isInteger(o.observers) || o.observers < 0 || o.observers > 16)
    throw new CustosError("USAGE", "--observers takes 0 to 16");
  const total = o.nodes + o.observers;
  if (o.faults && total > MAX_FAULT_NODES)
    throw new CustosError(
      "USAGE",
      `--faults takes at most ${MAX_FAULT_NODES} nodes (one proxy port per directed link)`,
    );
  if (!Number.isInteger(o.basePort) || o.basePort < 1024 || o.basePort + 100 + total > 65535)
    throw new CustosError("USAGE", "--base-port must leave room for RPC and libp2p ports below 65536");
  // network namespaces where the machine allows them, else 127.0.0.1 (and why)
  let layout: NetnsLayout | undefined;
  let fallback: string | undefined;
  if (o.faults && o.netns !== false) {
    const support = netnsSupport();
    if (support.ok) layout = await planLayout(dir, total);
    else
      fallback = `no network namespaces (${support.reason}): the faults are the link proxy's, on 127.0.0.1`;
  } else if (o.faults)
    fallback = "network namespaces not asked for: the faults are the link proxy's, on 127.0.0.1";
  // in namespaces every node has its own address: the ports cannot clash with this machine's
  const host = (i: number) => (layout ? nodeIp(layout, i) : "127.0.0.1");
  if (!layout)
    for (let i = 0; i < total; i++)
      for (const port of [o.basePort + i, o.basePort + 100 + i])
        if (!(await portFree(port)))
          throw new CustosError(
            "TESTNET_PORT_BUSY",
            `port ${port} is in use; choose other ports with --base-port`,
          );
  if (o.faults && !layout)
    for (let i = 0; i < total; i++)
      for (let j = 0; j < total; j++)
        if (i !== j && !(await portFree(linkPort(o.basePort, total, i, j))))
          throw new CustosError(
            "TESTNET_PORT_BUSY",
            `port ${linkPort(o.basePort, total, i, j)} (the link proxy's) is in use; choose other ports with --base-port`,
          );

  await mkdir(join(dir, "accounts"), { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString("base64url");
  const passwordFile = join(dir, "password");
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: "wx" });
  const chainId = o.chainId ?? "custos-testnet";
  const nodes: TestnetNode[] = [];
  const inits: Awaited<ReturnType<typeof initHome>>[] = [];
  // the nodes share a machine and write the same blocks: memtables of different sizes keep their
  // LevelDBs from flushing and compacting all at once (node/src/ledger/writeBuffer.ts)
  const writeBuffers = spreadWriteBuffers(total);
  for (let i = 0; i < total; i++) {
    const role = i < o.nodes ? "validator" : "observer";
    const name = role === "validator" ? `validator-${i}` : `observer-${i - o.nodes}`;
    const home = join(dir, name);
    const r = await initHome({
      home,
      dev: false,
      chainId,
      password,
      kdfIterations: TESTNET_KDF_ITERATIONS,
      rpcListen: `${host(i)}:${o.basePort + i}`,
    });
    const cfgPath = join(home, "config.json");
    const cfg = { ...JSON.parse(await readFile(cfgPath, "utf8")), ...o.nodeConfig };
    cfg.nodeKey.passwordFile = "../password";
    cfg.ledger = { writeBufferBytes: writeBuffers[i], ...(cfg.ledger ?? {}) };
    if (o.consensus) cfg.consensus = { ...(cfg.consensus ?? {}), ...o.consensus };
    await writeFile(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    inits.push(r);
    nodes.push({
      name,
      role,
      rpc: `http://${host(i)}:${o.basePort + i}`,
      p2p: `/ip4/${host(i)}/tcp/${o.basePort + 100 + i}/p2p/${r.peerId}`,
      pid: 0,
      home,
    });
  }
  const { accounts, members } = await createDevMembers(join(dir, "accounts"), password, {
    iterations: TESTNET_KDF_ITERATIONS,
  });
  const entry = (i: number) => ({
    name: nodes[i]?.name,
    publicKey: inits[i]?.nodePublicKey,
    peerId: inits[i]?.peerId,
    p2p: [`/ip4/${host(i)}/tcp/${o.basePort + 100 + i}`],
  });
  const genesis = devGenesis({
    chainId,
    validators: Array.from({ length: o.nodes }, (_, i) => entry(i)),
    observers: Array.from({ length: o.observers }, (_, k) => entry(o.nodes + k)),
    members,
    ...(o.blockIntervalMs === undefined ? {} : { minBlockIntervalMs: o.blockIntervalMs }),
    ...(o.maxBlockTxs === undefined ? {} : { maxBlockTxs: o.maxBlockTxs }),
    ...(o.p2pSecure === undefined ? {} : { p2pSecure: o.p2pSecure }),
  });
  const text = `${JSON.stringify(genesisToJson(genesis), null, 2)}\n`;
  await writeFile(join(dir, "genesis.json"), text);
  for (const n of nodes) await writeFile(join(n.home, "genesis.json"), text);

  const t: TestnetFile = { chainId, passwordFile, nodes, accounts, command: o.command, basePort: o.basePort };
  if (o.faults) {
    // node i reaches node j only through the proxy's port for the link i -> j
    for (const [i, n] of nodes.entries()) {
      const cfgPath = join(n.home, "config.json");
      const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
      const dial: Record<string, string[]> = {};
      for (const j of nodes.keys())
        if (j !== i)
          dial[inits[j]?.peerId as string] = [
            `/ip4/${layout ? faceIp(layout, j) : "127.0.0.1"}/tcp/${linkPort(o.basePort, total, i, j)}`,
          ];
      cfg.p2p = { ...(cfg.p2p ?? {}), dial };
      await writeFile(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    }
    t.links = { pid: 0, nodes: total, ...(fallback ? { fallback } : {}) };
    if (layout) t.netns = layout;
    const control: LinkControl = { version: 0, seed: 1, cuts: [], links: {} };
    await writeFile(join(dir, "links.json"), `${JSON.stringify(control, null, 2)}\n`);
  }
  await writeTestnet(dir, t);
  try {
    if (t.netns) await createNetwork(t.netns);
    if (t.links) await startProxy(dir, t);
    for (const n of nodes) {
      n.pid = spawnNode(t, n);
      await writeTestnet(dir, t); // every pid on disk as soon as it exists, so down can find it
    }
    for (const n of nodes) await waitReady(n, deadline);
    await waitConnected(t, deadline);
  } catch (err) {
    await down(dir).catch(() => {});
    throw err;
  }
  return t;
}

export interface AddedNode {
  node: TestnetNode;
  publicKey: string;
  peerId: string;
  /** Where the other validators dial it (the p2p address for the validator.add proposal). */
  listen: string;
}

/**
 * Creates one more validator (or observer) home on the testnet's genesis (a new SM2 key and the
 * libp2p key derived from it, free ports), starts it with --join and records it in testnet.json. It syncs from the validators
 * once they let it in, which they do when a validator.add (observer.add) proposal for its key and
 * peer id has passed.
 */
export async function addNode(
  dir: string,
  o: { name?: string; role?: "validator" | "observer"; timeoutMs?: number } = {},
): Promise<AddedNode> {
  const t = await readTestnet(resolve(dir));
  const role = o.role ?? "validator";
  let k = t.nodes.filter((n) => n.role === role).length;
  while (t.nodes.some((n) => n.name === `${role}-${k}`)) k++;
  const name = o.name ?? `${role}-${k}`;
  if (t.nodes.some((n) => n.name === name)) throw new CustosError("TESTNET_EXISTS", `${name} exists already`);
  // the documented pattern: the i-th node of the testnet on base + i (RPC) and base + 100 + i (libp2p)
  const index = t.nodes.length;
  const base = (t.basePort ?? Number(new URL(t.nodes[0]?.rpc ?? "http://x:8545").port)) + index;
  // on a testnet in namespaces, a namespace of its own on the bridge (without link faults)
  if (t.netns) await ensureNamespace(t.netns, index);
  const host = t.netns ? nodeIp(t.netns, index) : "127.0.0.1";
  if (!t.netns)
    for (const port of [base, base + 100])
      if (!(await portFree(port)))
        throw new CustosError(
          "TESTNET_PORT_BUSY",
          `port ${port} is in use: node ${index} of this testnet listens on RPC port ${base} and libp2p port ${base + 100}`,
        );
  const home = join(resolve(dir), name);
  const password = (await readFile(t.passwordFile, "utf8")).trim();
  const r = await initHome({
    home,
    dev: false,
    chainId: t.chainId,
    password,
    kdfIterations: TESTNET_KDF_ITERATIONS,
    rpcListen: `${host}:${base}`,
  });
  const listen = `/ip4/${host}/tcp/${base + 100}`;
  const cfgPath = join(home, "config.json");
  const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
  cfg.nodeKey.passwordFile = "../password";
  cfg.p2p = { ...(cfg.p2p ?? {}), listen: [listen] };
  await writeFile(
    cfgPath,
    `${JSON.stringify(cfg, null, 2)}
`,
  );
  await writeFile(join(home, "genesis.json"), await readFile(join(resolve(dir), "genesis.json")));
  const node: TestnetNode = {
    name,
    role,
    rpc: `http://${host}:${base}`,
    p2p: `${listen}/p2p/${r.peerId}`,
    pid: 0,
    home,
    join: true,
  };
  t.nodes.push(node);
  node.pid = spawnNode(t, node);
  await writeTestnet(resolve(dir), t);
  await waitReady(node, Date.now() + (o.timeoutMs ?? 30_000));
  return { node, publicKey: r.nodePublicKey, peerId: r.peerId, listen };
}

/** A node by its index in `nodes` or its name. */
export function pick(t: TestnetFile, which: string | number): { node: TestnetNode; index: number } {
  const index =
    typeof which === "number" || /^\d+$/.test(which)
      ? Number(which)
      : t.nodes.findIndex((n) => n.name === which);
  const node = t.nodes[index];
  if (!node)
    throw new CustosError(
      "TESTNET_NO_SUCH_NODE",
      `no node ${which}: give an index 0..${t.nodes.length - 1} or a name (${t.nodes.map((n) => n.name).join(", ")})`,
    );
  return { node, index };
}

export async function status(dir: string): Promise<NodeStatus[]> {
  const t = await readTestnet(dir);
  return Promise.all(
    t.nodes.map(async (n, index) => {
      const s: NodeStatus = {
        index,
        name: n.name,
        role: n.role,
        pid: n.pid,
        state: processState(n),
        rpc: n.rpc,
      };
      if (s.state !== "running") return s;
      try {
        const st = await new CustosClient(n.rpc, { timeoutMs: 2000 }).status();
        const x = st as unknown as { view: number; peers: number; syncing?: boolean };
        return {
          ...s,
          height: st.height,
          latestHash: st.latestHash,
          view: x.view,
          peers: x.peers,
          ...(x.syncing === undefined ? {} : { syncing: x.syncing }),
        };
      } catch (err) {
        return { ...s, error: errorMessage(err) };
      }
    }),
  );
}

async function waitExit(n: TestnetNode, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (processState(n) !== "stopped") {
    if (Date.now() > end) return false;
    await sleep(50);
  }
  return true;
}

/** To the node's process group (it was spawned detached, so it leads one): wrappers included. */
function signal(n: TestnetNode, sig: NodeJS.Signals): void {
  try {
    process.kill(-n.pid, sig);
  } catch {
    try {
      process.kill(n.pid, sig);
    } catch {
      // gone already
    }
  }
}

/** SIGTERM (the node stops cleanly), then SIGKILL if it has not exited after `graceMs`. */
async function stopNode(n: TestnetNode, graceMs = 10_000): Promise<void> {
  const state = processState(n);
  if (state === "stopped") return;
  if (state === "paused") signal(n, "SIGCONT");
  signal(n, "SIGTERM");
  if (!(await waitExit(n, graceMs))) {
    signal(n, "SIGKILL");
    await waitExit(n, 5000);
  }
}

export async function down(dir: string): Promise<void> {
  const t = await readTestnet(dir);
  await Promise.all(t.nodes.map((n) => stopNode(n)));
  if (t.links?.pid && proxyRunning(dir, t)) {
    try {
      process.kill(t.links.pid, "SIGTERM");
    } catch {
      // gone already
    }
    const end = Date.now() + 5000;
    while (proxyRunning(dir, t) && Date.now() < end) await sleep(50);
    if (proxyRunning(dir, t)) process.kill(t.links.pid, "SIGKILL");
  }
  // the namespaces go with the processes (up --reuse makes them again)
  if (t.netns) await destroyNetwork(t.netns, t.nodes.length - t.netns.nodes);
}

/** The link proxy of this testnet runs (its pid is still `custos testnet link-proxy --dir DIR`). */
export function proxyRunning(dir: string, t: TestnetFile): boolean {
  const pid = t.links?.pid;
  if (!pid) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes(`\0link-proxy\0--dir\0${resolve(dir)}`);
  } catch {
    return false;
  }
}

async function startProxy(dir: string, t: TestnetFile): Promise<void> {
  const [cmd, ...args] = t.command;
  const out = openSync(join(dir, "link-proxy.out"), "a");
  try {
    const child = spawn(cmd as string, [...args, "testnet", "link-proxy", "--dir", resolve(dir)], {
      detached: true,
      stdio: ["ignore", out, out],
    });
    child.once("error", () => {});
    child.unref();
    if (!child.pid) throw new CustosError("TESTNET_SPAWN_FAILED", `cannot start the link proxy with ${cmd}`);
    (t.links as { pid: number }).pid = child.pid;
  } finally {
    closeSync(out);
  }
  await writeTestnet(dir, t);
  // it answers once it listens on every link and has applied links.json
  await applyControl(dir, (c) => c, { timeoutMs: 30_000, proxyAlive: () => proxyRunning(dir, t) });
}

/** Runs the link proxy of the testnet in `dir` until SIGTERM/SIGINT (the hidden command behind --faults). */
export async function runLinkProxy(dir: string): Promise<void> {
  const t = await readTestnet(resolve(dir));
  if (!t.links || t.basePort === undefined)
    throw new CustosError("LINKS_NOT_ENABLED", `the testnet in ${dir} was not started with --faults`);
  const targets = t.nodes.slice(0, t.links.nodes).map((n) => Number(/\/tcp\/(\d+)/.exec(n.p2p)?.[1]));
  const l = t.netns;
  const proxy = new LinkProxy({
    dir: resolve(dir),
    targets,
    basePort: t.basePort,
    ...(l
      ? {
          netns: {
            listen: (j: number) => faceIp(l, j),
            target: (j: number) => nodeIp(l, j),
            source: (i: number) => faceIp(l, i),
            kernel: (c: LinkControl) => applyKernelFaults(l, c),
          },
        }
      : {}),
  });
  await proxy.start();
  await new Promise<void>((done) => {
    const stop = () => {
      proxy.stop().then(done, done);
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}

/** A node's index from its index or name, for the link commands. */
function indexOf(t: TestnetFile, which: string | number): number {
  const { index } = pick(t, which);
  if (!t.links || index >= t.links.nodes)
    throw new CustosError(
      "LINKS_NOT_ENABLED",
      t.links
        ? `${which} was added after up: it has no proxied links`
        : "the testnet was not started with --faults",
    );
  return index;
}

async function withLinks(
  dir: string,
  change: (c: LinkControl, t: TestnetFile) => LinkControl,
): Promise<LinkControl> {
  const t = await readTestnet(resolve(dir));
  if (!t.links)
    throw new CustosError(
      "LINKS_NOT_ENABLED",
      `the testnet in ${dir} has no link proxy: start it with custos testnet up --faults`,
    );
  return applyControl(resolve(dir), (c) => change(c, t), { proxyAlive: () => proxyRunning(resolve(dir), t) });
}

/**
 * Splits the nodes into groups that cannot reach each other ("0,1|2,3,4", indexes or names); a
 * node named in no group forms one group with the other unnamed ones. Replaces earlier cuts.
 */
export async function partition(dir: string, groups: (string | number)[][]): Promise<number[][]> {
  let out: number[][] = [];
  await withLinks(dir, (c, t) => {
    const named = groups.map((g) => g.map((w) => indexOf(t, w)));
    const all = named.flat();
    if (new Set(all).size !== all.length) throw new CustosError("USAGE", "a node is in two groups");
    const rest = Array.from({ length: t.links?.nodes ?? 0 }, (_, i) => i).filter((i) => !all.includes(i));
    out = rest.length > 0 ? [...named, rest] : named;
    if (out.length < 2) throw new CustosError("USAGE", "a partition needs at least two groups");
    return { ...c, cuts: partitionCuts(out) };
  });
  return out;
}

/** One-way cut: bytes from `from` to `to` are dropped (adds to the cuts in force). */
export async function cut(dir: string, from: string | number, to: string | number): Promise<string> {
  let key = "";
  await withLinks(dir, (c, t) => {
    key = `${indexOf(t, from)}>${indexOf(t, to)}`;
    return { ...c, cuts: [...new Set([...c.cuts, key])] };
  });
  return key;
}

/**
 * Sets delay, jitter, loss, duplication and bandwidth on links: `from` -> `to`, either side "*"
 * for every node; `both` also the way back. Settings given replace those of the link.
 */
export async function setLinks(
  dir: string,
  from: string | number,
  to: string | number,
  settings: LinkSettings,
  both = false,
): Promise<string[]> {
  const keys: string[] = [];
  await withLinks(dir, (c, t) => {
    const n = t.links?.nodes ?? 0;
    const side = (w: string | number) =>
      w === "*" ? Array.from({ length: n }, (_, i) => i) : [indexOf(t, w)];
    const links = { ...c.links };
    for (const i of side(from))
      for (const j of side(to)) {
        if (i === j) continue;
        for (const k of both ? [`${i}>${j}`, `${j}>${i}`] : [`${i}>${j}`]) {
          links[k] = settings;
          keys.push(k);
        }
      }
    return { ...c, links };
  });
  return [...new Set(keys)];
}

/** Removes every partition and cut and, unless `keepLinks`, every link setting. */
export async function heal(dir: string, o: { keepLinks?: boolean } = {}): Promise<void> {
  await withLinks(dir, (c) => ({ ...c, cuts: [], links: o.keepLinks ? c.links : {} }));
}

/** The faults in force and the proxy's counters. */
export async function links(dir: string): Promise<{
  control: LinkControl;
  state: LinkState | undefined;
  running: boolean;
  /** In network namespaces: packets each node's kernel dropped on its way out (cuts, loss). */
  kernelDropped?: { faults: number; bypass: number }[];
  /** Why the nodes are not in namespaces, when they are not. */
  fallback?: string;
}> {
  const t = await readTestnet(resolve(dir));
  if (!t.links)
    throw new CustosError(
      "LINKS_NOT_ENABLED",
      `the testnet in ${dir} has no link proxy: start it with custos testnet up --faults`,
    );
  return {
    control: readControl(resolve(dir)),
    state: await readLinkState(resolve(dir)),
    running: proxyRunning(resolve(dir), t),
    ...(t.netns ? { kernelDropped: await kernelDrops(t.netns) } : {}),
    ...(t.links.fallback ? { fallback: t.links.fallback } : {}),
  };
}

/** kill -9: no clean shutdown, what a crash looks like. */
export async function kill(dir: string, which: string | number): Promise<TestnetNode> {
  const { node } = pick(await readTestnet(dir), which);
  if (processState(node) === "stopped")
    throw new CustosError("TESTNET_NOT_RUNNING", `${node.name} is not running`);
  signal(node, "SIGKILL");
  await waitExit(node, 5000);
  return node;
}

/** Stops the node if it runs, starts it again on the same home, and waits for its RPC. */
export async function restart(
  dir: string,
  which: string | number,
  timeoutMs = 30_000,
  /** Extra environment for this start only (e.g. CUSTOS_CRASH_AT for a crash-point test). */
  env?: Record<string, string>,
  /**
   * How to run `custos` from now on (the CLI's own: restarting node by node onto a new build is
   * a rolling upgrade); by default the one in testnet.json.
   */
  command?: string[],
): Promise<TestnetNode> {
  const t = await readTestnet(dir);
  const { node } = pick(t, which);
  await stopNode(node);
  if (command) t.command = command;
  node.pid = spawnNode(t, node, env);
  // the file as it is now (another restart may have written it meanwhile), with this pid
  await withFileLock(async () => {
    const now = await readTestnet(dir);
    const at = now.nodes.find((n) => n.name === node.name);
    if (at) at.pid = node.pid;
    if (command) now.command = command;
    await writeTestnet(dir, now);
  });
  await waitReady(node, Date.now() + timeoutMs);
  return node;
}

/** SIGSTOP: the process freezes with its connections open, like a hung machine. */
export async function pause(dir: string, which: string | number): Promise<TestnetNode> {
  const { node } = pick(await readTestnet(dir), which);
  if (processState(node) !== "running")
    throw new CustosError("TESTNET_NOT_RUNNING", `${node.name} is not running`);
  signal(node, "SIGSTOP");
  const end = Date.now() + 2000;
  while (processState(node) !== "paused" && Date.now() < end) await sleep(20);
  return node;
}

export async function resume(dir: string, which: string | number): Promise<TestnetNode> {
  const { node } = pick(await readTestnet(dir), which);
  if (processState(node) !== "paused")
    throw new CustosError("TESTNET_NOT_PAUSED", `${node.name} is not paused`);
  signal(node, "SIGCONT");
  const end = Date.now() + 2000;
  while (processState(node) === "paused" && Date.now() < end) await sleep(20);
  return node;
}
