import { execFile, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import { CustosError } from "@custos/utils";
import type { LinkControl } from "./links.js";

const run = promisify(execFile);

/**
 * Network namespaces for a testnet started with `--faults` (issue 17), where the machine allows
 * them (Linux, root, iproute2's `ip` and `tc`).
 *
 * Layout, for a testnet whose subnet is 10.A.B.0/24:
 * - a bridge `cb<tag>` in the root namespace, 10.A.B.1: the CLI, the tests and the link proxy
 *   reach the nodes through it;
 * - node i in namespace `custos-<tag>-<i>`, its `eth0` (a veth whose other end is on the bridge)
 *   10.A.B.(10+i): its RPC and libp2p listen there;
 * - node i's "face" 10.A.B.(100+i), an address of the bridge: the link proxy listens there for the
 *   others' connections to node i, and connects onwards to node i from the dialler's face, so that
 *   every byte from node i to node j leaves node i's namespace addressed to j's face.
 *
 * What the kernel does, on the egress of each node's eth0 (an htb qdisc, classic-BPF filters that
 * classify by destination address; this kernel has neither netem nor the gact action, so a drop is
 * a class whose queue is a pfifo of length 0):
 * - a cut i -> j: every packet from node i to j's face is dropped (a firewall's DROP; TCP's ACKs
 *   included, as on a real network), so a partition is what a partition is: connections go quiet,
 *   retransmit with back-off, and resume or time out after the heal;
 * - `loss p`: each packet to j's face is dropped with probability p (the filter's random load),
 *   and TCP retransmits it;
 * - `bandwidth B`: the link's class has rate B bytes/s;
 * - direct packets to another node's own address are dropped: libp2p may learn those addresses
 *   from identify, and a connection that bypassed the faces would bypass the faults.
 * What the kernel cannot do here (delay, jitter, duplication) the link proxy does (links.ts).
 */
export interface NetnsLayout {
  /** Six hex digits from the testnet's directory: names of its namespaces and links. */
  tag: string;
  /** "10.A.B": the testnet's /24. */
  subnet: string;
  /** The nodes that have namespaces made by up (added nodes get theirs from `ensureNamespace`). */
  nodes: number;
}

export const nsName = (l: NetnsLayout, i: number): string => `custos-${l.tag}-${i}`;
const bridgeName = (l: NetnsLayout): string => `cb${l.tag}`;
const vethName = (l: NetnsLayout, i: number): string => `cv${l.tag}${i}`;
/** Node i's own address (its RPC and libp2p listen here). */
export const nodeIp = (l: NetnsLayout, i: number): string => `${l.subnet}.${10 + i}`;
/** Where the other nodes reach node i: the link proxy's address for it. */
export const faceIp = (l: NetnsLayout, i: number): string => `${l.subnet}.${100 + i}`;
/** The root namespace's address on the testnet's bridge. */
export const hostIp = (l: NetnsLayout): string => `${l.subnet}.1`;

/** Nodes on one testnet with namespaces: own addresses .10 .. .99, faces .100 .. .109. */
export const MAX_NETNS_NODES = 90;

const ipToInt = (ip: string): number => ip.split(".").reduce((a, x) => a * 256 + Number(x), 0);

async function ip(args: string[]): Promise<void> {
  try {
    await run("ip", args);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CustosError("NETNS_FAILED", `ip ${args.join(" ")}: ${(e.stderr ?? e.message).trim()}`);
  }
}

/**
 * Whether namespaces can be made here, with the reason when not. Tries it: a namespace and a veth
 * pair made and removed (a container without CAP_NET_ADMIN has `ip` but cannot).
 */
export function netnsSupport(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== "linux")
    return { ok: false, reason: `${process.platform} has no network namespaces` };
  if (process.getuid?.() !== 0) return { ok: false, reason: "network namespaces need root" };
  const probe = `custos-probe-${process.pid}`;
  try {
    execFileSync("tc", ["-V"], { stdio: "ignore" });
    execFileSync("ip", ["netns", "add", probe], { stdio: "pipe" });
    try {
      execFileSync("ip", ["-n", probe, "link", "add", "p0", "type", "veth", "peer", "name", "p1"], {
        stdio: "pipe",
      });
      execFileSync("tc", ["-n", probe, "qdisc", "add", "dev", "p0", "root", "handle", "1:", "htb"], {
        stdio: "pipe",
      });
    } finally {
      execFileSync("ip", ["netns", "del", probe], { stdio: "ignore" });
    }
    return { ok: true };
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return { ok: false, reason: (e.stderr?.toString() || e.message).trim().split("\n")[0] ?? "unknown" };
  }
}

/** The addresses in use in the root namespace (to keep a new testnet's subnet apart from them). */
async function usedSubnets(): Promise<Set<string>> {
  const { stdout } = await run("ip", ["-4", "-o", "addr", "show"]);
  const used = new Set<string>();
  for (const m of stdout.matchAll(/inet (\d+)\.(\d+)\.(\d+)\.\d+\//g)) used.add(`${m[1]}.${m[2]}.${m[3]}`);
  return used;
}

/** A tag and a free 10.x.y.0/24 (x in 200..249) for the testnet in `dir`, derived from its path. */
export async function planLayout(dir: string, nodes: number): Promise<NetnsLayout> {
  if (nodes > MAX_NETNS_NODES)
    throw new CustosError("USAGE", `at most ${MAX_NETNS_NODES} nodes in network namespaces`);
  const h = createHash("sha256").update(dir).digest();
  const tag = h.subarray(0, 3).toString("hex");
  const used = await usedSubnets();
  let k = h.readUInt16BE(3) % (50 * 256);
  for (let tries = 0; tries < 50 * 256; tries++, k = (k + 1) % (50 * 256)) {
    const subnet = `10.${200 + Math.floor(k / 256)}.${k % 256}`;
    if (!used.has(subnet)) return { tag, subnet, nodes };
  }
  throw new CustosError("NETNS_FAILED", "no free 10.200-249.x.0/24 for the testnet's bridge");
}

/** Classic BPF, as `tc ... bpf bytecode` takes it ("n,code jt jf k,..."). */
type Insn = [code: number, jt: number, jf: number, k: number];
const LDW_ABS = 0x20; // ld [k]
const JEQ_K = 0x15;
const JGE_K = 0x35;
const RET_K = 0x06;
/** SKF_AD_OFF + SKF_AD_RANDOM: a load of this "offset" gives a random 32-bit number. */
const LD_RANDOM = 0xfffff000 + 56;
/** The IPv4 destination in a frame seen at an ethernet device's egress (14-byte header). */
const IP_DST = 14 + 16;
const bytecode = (p: Insn[]): string => `${p.length},${p.map((x) => x.join(" ")).join(",")}`;

/**
 * htb class ids (hex minor): 1:1 the default, 1:ff drops (cuts, loss), 1:fe drops (a node's own
 * address dialled directly), 1:(10+j) node i's link to j.
 */
const DROP_CLASS = 0x100ff;
const BYPASS_CLASS = 0x100fe;
const linkClass = (j: number): number => 0x10010 + j;
const classId = (id: number): string => `1:${(id & 0xffff).toString(16)}`;
const UNLIMITED = "10gbit";

/** The filter program of the link i -> j: drop, lose with a probability, or put in the link's class. */
function linkProgram(face: number, j: number, cut: boolean, loss: number): Insn[] {
  if (cut)
    return [
      [LDW_ABS, 0, 0, IP_DST],
      [JEQ_K, 0, 1, face],
      [RET_K, 0, 0, DROP_CLASS],
      [RET_K, 0, 0, 0],
    ];
  if (loss > 0) {
    // dropped when random >= (1 - loss) * 2^32
    const threshold = Math.min(0xffffffff, Math.max(0, Math.floor((1 - Math.min(loss, 1)) * 2 ** 32)));
    return [
      [LDW_ABS, 0, 0, IP_DST],
      [JEQ_K, 0, 4, face],
      [LDW_ABS, 0, 0, LD_RANDOM],
      [JGE_K, 0, 1, threshold],
      [RET_K, 0, 0, DROP_CLASS],
      [RET_K, 0, 0, linkClass(j)],
      [RET_K, 0, 0, 0],
    ];
  }
  return [
    [LDW_ABS, 0, 0, IP_DST],
    [JEQ_K, 0, 1, face],
    [RET_K, 0, 0, linkClass(j)],
    [RET_K, 0, 0, 0],
  ];
}

/** Drops what node i sends to another node's own address (only the faces lead to a node). */
function bypassProgram(addresses: number[]): Insn[] {
  const m = addresses.length;
  return [
    [LDW_ABS, 0, 0, IP_DST],
    ...addresses.map((a, idx): Insn => [JEQ_K, m - idx, 0, a]),
    [RET_K, 0, 0, 0],
    [RET_K, 0, 0, BYPASS_CLASS],
  ];
}

function classLine(j: number, bandwidth: number | undefined, verb: "add" | "change"): string {
  const rate = bandwidth && bandwidth > 0 ? `${Math.max(8, Math.round(bandwidth * 8))}bit` : UNLIMITED;
  const quantum = bandwidth && bandwidth > 0 ? 1514 : 60000;
  return `class ${verb} dev eth0 parent 1: classid ${classId(linkClass(j))} htb rate ${rate} ceil ${rate} quantum ${quantum}`;
}

const filterPrio = (j: number) => 100 + j;

/** The tc commands that put node i's egress in the state `control` asks for. */
export function kernelCommands(
  l: NetnsLayout,
  i: number,
  control: LinkControl,
  verb: "add" | "change",
): string[] {
  const cuts = new Set(control.cuts);
  const lines: string[] = [];
  for (let j = 0; j < l.nodes; j++) {
    if (j === i) continue;
    const key = `${i}>${j}`;
    const s = control.links[key] ?? {};
    lines.push(classLine(j, s.bandwidth, verb));
    const program = linkProgram(ipToInt(faceIp(l, j)), j, cuts.has(key), s.loss ?? 0);
    lines.push(
      `filter replace dev eth0 parent 1: protocol ip prio ${filterPrio(j)} handle 1 bpf bytecode "${bytecode(program)}"`,
    );
  }
  return lines;
}

async function tcBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  await new Promise<void>((ok, fail) => {
    const child = execFile("tc", ["-n", ns, "-batch", "-"], (err, _out, stderr) => {
      if (err)
        fail(
          new CustosError("NETNS_FAILED", `tc in ${ns}: ${(stderr || err.message).trim().split("\n")[0]}`),
        );
      else ok();
    });
    child.stdin?.end(`${lines.join("\n")}\n`);
  });
}

/** Applies `control` to every node's egress (what the link proxy does when links.json changes). */
export async function applyKernelFaults(l: NetnsLayout, control: LinkControl): Promise<void> {
  await Promise.all(
    Array.from({ length: l.nodes }, (_, i) => tcBatch(nsName(l, i), kernelCommands(l, i, control, "change"))),
  );
}

async function deleteQuietly(args: string[]): Promise<void> {
  await run("ip", args).catch(() => {});
}

/** Removes the testnet's namespaces and bridge (the faces go with it); what is not there is skipped. */
export async function destroyNetwork(l: NetnsLayout, extra = 0): Promise<void> {
  await Promise.all(
    Array.from({ length: l.nodes + extra }, (_, i) => deleteQuietly(["netns", "del", nsName(l, i)])),
  );
  await deleteQuietly(["link", "del", bridgeName(l)]);
}

async function exists(args: string[]): Promise<boolean> {
  return run("ip", args).then(
    () => true,
    () => false,
  );
}

/** Node i's namespace, its veth on the bridge and its address; with `faults`, its egress qdisc and filters. */
async function makeNamespace(l: NetnsLayout, i: number, faults: boolean): Promise<void> {
  const ns = nsName(l, i);
  await deleteQuietly(["netns", "del", ns]);
  await deleteQuietly(["link", "del", vethName(l, i)]);
  await ip(["netns", "add", ns]);
  await ip(["link", "add", vethName(l, i), "type", "veth", "peer", "name", "eth0", "netns", ns]);
  await ip(["link", "set", vethName(l, i), "master", bridgeName(l), "up"]);
  await ip(["-n", ns, "addr", "add", `${nodeIp(l, i)}/24`, "dev", "eth0"]);
  await ip(["-n", ns, "link", "set", "eth0", "up"]);
  await ip(["-n", ns, "link", "set", "lo", "up"]);
  if (!faults) return;
  const others = Array.from({ length: l.nodes }, (_, j) => j).filter((j) => j !== i);
  await tcBatch(ns, [
    "qdisc add dev eth0 root handle 1: htb default 1",
    `class add dev eth0 parent 1: classid 1:1 htb rate ${UNLIMITED} quantum 60000`,
    `class add dev eth0 parent 1: classid ${classId(DROP_CLASS)} htb rate ${UNLIMITED} quantum 60000`,
    `qdisc add dev eth0 parent ${classId(DROP_CLASS)} handle ff: pfifo limit 0`,
    `class add dev eth0 parent 1: classid ${classId(BYPASS_CLASS)} htb rate ${UNLIMITED} quantum 60000`,
    `qdisc add dev eth0 parent ${classId(BYPASS_CLASS)} handle fe: pfifo limit 0`,
    `filter add dev eth0 parent 1: protocol ip prio 1 handle 1 bpf bytecode "${bytecode(
      bypassProgram(others.map((j) => ipToInt(nodeIp(l, j)))),
    )}"`,
    ...kernelCommands(l, i, { version: 0, seed: 1, cuts: [], links: {} }, "add"),
  ]);
}

/**
 * Makes the testnet's bridge, faces and one namespace per node (anything of the same tag left
 * over from an earlier run is removed first). Idempotent: `up --reuse` after `down` makes it again.
 */
export async function createNetwork(l: NetnsLayout): Promise<void> {
  const br = bridgeName(l);
  if (await exists(["link", "show", br])) await destroyNetwork(l);
  try {
    await ip(["link", "add", br, "type", "bridge"]);
    await ip(["addr", "add", `${hostIp(l)}/24`, "dev", br]);
    for (let i = 0; i < l.nodes; i++) await ip(["addr", "add", `${faceIp(l, i)}/24`, "dev", br]);
    await ip(["link", "set", br, "up"]);
    for (let i = 0; i < l.nodes; i++) await makeNamespace(l, i, true);
  } catch (err) {
    await destroyNetwork(l);
    throw err;
  }
}

/** A namespace for a node added after up (index >= l.nodes): on the bridge, without link faults. */
export async function ensureNamespace(l: NetnsLayout, i: number): Promise<void> {
  if (await exists(["-n", nsName(l, i), "link", "show", "eth0"])) return;
  await makeNamespace(l, i, false);
}

/** Whether the testnet's bridge is there (it goes with down, and up --reuse makes it again). */
export async function networkExists(l: NetnsLayout): Promise<boolean> {
  return exists(["link", "show", bridgeName(l)]);
}

/**
 * Packets the kernel dropped on each node's egress, by node: `faults` for cuts and loss,
 * `bypass` for packets to another node's own address (a dial around the link proxy).
 */
export async function kernelDrops(l: NetnsLayout): Promise<{ faults: number; bypass: number }[]> {
  const dropped = (stdout: string, id: number): number => {
    const at = stdout.indexOf(`class htb ${classId(id)} `);
    const m = at < 0 ? null : /dropped (\d+)/.exec(stdout.slice(at));
    return m ? Number(m[1]) : 0;
  };
  return Promise.all(
    Array.from({ length: l.nodes }, async (_, i) => {
      try {
        const { stdout } = await run("tc", ["-n", nsName(l, i), "-s", "class", "show", "dev", "eth0"]);
        return { faults: dropped(stdout, DROP_CLASS), bypass: dropped(stdout, BYPASS_CLASS) };
      } catch {
        return { faults: 0, bypass: 0 };
      }
    }),
  );
}

/** The command prefix that runs a program in node i's namespace. */
export const inNamespace = (l: NetnsLayout, i: number): string[] => ["ip", "netns", "exec", nsName(l, i)];
