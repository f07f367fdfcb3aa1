import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import { CustosClient } from "@custos/client";
import { createDevMembers, type DevAccount, devGenesis, initHome } from "@custos/node";
import { genesisToJson, type P2pSecure } from "@custos/types";
import { CustosError, errorMessage, portFree, sleep } from "@custos/utils";

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
  const tmp = `${fileOf(dir)}.tmp`;
  await writeFile(tmp, `${JSON.stringify(t, null, 2)}\n`);
  await rename(tmp, fileOf(dir));
}

/**
 * A base port at which `count` nodes find their RPC (base + i) and libp2p (base + 100 + i) ports
 * free. Below Linux's ephemeral range (32768 and up), so that no outgoing connection takes a
 * node's port while the node is down (a restarted node must get its port back).
 */
export async function freeBasePort(count: number, from = 20_000, span = 12_000): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = from + Math.floor(Math.random() * span);
    const ports = Array.from({ length: count }, (_, i) => [base + i, base + 100 + i]).flat();
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

function spawnNode(t: TestnetFile, n: TestnetNode): number {
  const [cmd, ...args] = t.command;
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
      { detached: true, stdio: ["ignore", out, out] },
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
  if (!Number.isInteger(o.basePort) || o.basePort < 1024 || o.basePort + 100 + total > 65535)
    throw new CustosError("USAGE", "--base-port must leave room for RPC and libp2p ports below 65536");
  for (let i = 0; i < total; i++)
    for (const port of [o.basePort + i, o.basePort + 100 + i])
      if (!(await portFree(port)))
        throw new CustosError(
          "TESTNET_PORT_BUSY",
          `port ${port} is in use; choose other ports with --base-port`,
        );

  await mkdir(join(dir, "accounts"), { recursive: true, mode: 0o700 });
  const password = randomBytes(18).toString("base64url");
  const passwordFile = join(dir, "password");
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600, flag: "wx" });
  const chainId = o.chainId ?? "custos-testnet";
  const nodes: TestnetNode[] = [];
  const inits: Awaited<ReturnType<typeof initHome>>[] = [];
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
      rpcListen: `127.0.0.1:${o.basePort + i}`,
    });
    const cfgPath = join(home, "config.json");
    const cfg = { ...JSON.parse(await readFile(cfgPath, "utf8")), ...o.nodeConfig };
    cfg.nodeKey.passwordFile = "../password";
    await writeFile(cfgPath, `${JSON.stringify(cfg, null, 2)}\n`);
    inits.push(r);
    nodes.push({
      name,
      role,
      rpc: `http://127.0.0.1:${o.basePort + i}`,
      p2p: `/ip4/127.0.0.1/tcp/${o.basePort + 100 + i}/p2p/${r.peerId}`,
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
    p2p: [`/ip4/127.0.0.1/tcp/${o.basePort + 100 + i}`],
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
  await writeTestnet(dir, t);
  try {
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
    rpcListen: `127.0.0.1:${base}`,
  });
  const listen = `/ip4/127.0.0.1/tcp/${base + 100}`;
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
    rpc: `http://127.0.0.1:${base}`,
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
export async function restart(dir: string, which: string | number, timeoutMs = 30_000): Promise<TestnetNode> {
  const t = await readTestnet(dir);
  const { node } = pick(t, which);
  await stopNode(node);
  node.pid = spawnNode(t, node);
  await writeTestnet(dir, t);
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
