import { existsSync, readFileSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { CustosError, sleep } from "@custos/utils";

/**
 * The fault-injecting link layer of a testnet started with `--faults` (issue 17).
 *
 * One proxy process per testnet listens on one port per directed link (i -> j: the port node i
 * dials to reach node j, written into node i's config.json `p2p.dial`), and forwards each TCP
 * connection to node j's real libp2p port. This machine's kernel has no netem, so delay and
 * jitter are always the proxy's. Where the machine allows network namespaces (netns.ts), each
 * node has its own and the kernel does cuts, loss and bandwidth on real packets; where it does
 * not, everything runs on 127.0.0.1 and the proxy does all of it.
 *
 * What each fault means on a TCP stream in the proxy (libp2p's noise + yamux ride on it, so bytes
 * can only be delayed, held or cut, never reordered, duplicated or dropped without breaking it):
 * - `delayMs` + uniform `jitterMs`: each chunk arrives that much later, in order;
 * - `loss` (0..1): a chunk that is "lost" arrives one retransmission timeout later (200 ms,
 *   doubling with each consecutive loss up to 3.2 s), as TCP would deliver it;
 * - `duplicate` (0..1): TCP drops duplicated segments before the application sees them, so a
 *   duplicated chunk only costs its bandwidth twice; it is counted, never delivered twice;
 * - `bandwidth` (bytes/s): chunks leave at most that fast;
 * - a cut (one-way, `from` -> `to`): bytes from `from` to `to` are dropped on every connection
 *   between them and new connections from `from` to `to` hang; a partition is a cut both ways
 *   between every two groups. Dropping is what a firewall's DROP does: nobody is told, the
 *   connections just go quiet. On heal, every connection that lost bytes is closed (it cannot be
 *   used again) and the nodes dial afresh through the proxy.
 */
export interface LinkSettings {
  delayMs?: number;
  jitterMs?: number;
  loss?: number;
  duplicate?: number;
  bandwidth?: number;
}

/** DIR/links.json: the faults wanted, written by the commands, read by the proxy. */
export interface LinkControl {
  version: number;
  seed: number;
  /** Directed cuts "i>j": bytes from node i to node j are dropped. */
  cuts: string[];
  /** Per directed link "i>j". */
  links: Record<string, LinkSettings>;
}

/** DIR/links.state.json: what the proxy applied, and its counters. */
export interface LinkState {
  version: number;
  pid: number;
  connections: number;
  /** Connections closed because they had lost bytes to a cut, since start. */
  closedAfterCut: number;
  bytes: number;
  droppedBytes: number;
  delayedChunks: number;
  lostChunks: number;
  duplicatedChunks: number;
}

export type LinkErrorCode = "LINKS_NOT_ENABLED" | "LINKS_NOT_RUNNING" | "USAGE";

const controlFile = (dir: string) => join(dir, "links.json");
const stateFile = (dir: string) => join(dir, "links.state.json");

/** The directed link i -> j is served on this port (basePort + 200 + i * nodes + j). */
export function linkPort(basePort: number, nodes: number, from: number, to: number): number {
  return basePort + 200 + from * nodes + to;
}

/** At most this many nodes on a testnet with faults: n * n link ports fit in basePort + 200 .. + 299. */
export const MAX_FAULT_NODES = 10;

export function readControl(dir: string): LinkControl {
  try {
    return JSON.parse(readFileSync(controlFile(dir), "utf8")) as LinkControl;
  } catch {
    return { version: 0, seed: 1, cuts: [], links: {} };
  }
}

export async function readLinkState(dir: string): Promise<LinkState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(dir), "utf8")) as LinkState;
  } catch {
    return undefined;
  }
}

async function writeJson(path: string, v: unknown): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(v, null, 2)}\n`);
  await rename(tmp, path);
}

/**
 * Writes a new control (its version one more than the last) and waits until the proxy has
 * applied it (at most `timeoutMs`), so that a command returns only once the fault is in force.
 */
export async function applyControl(
  dir: string,
  change: (c: LinkControl) => LinkControl,
  o: { timeoutMs?: number; proxyAlive?: () => boolean } = {},
): Promise<LinkControl> {
  if (!existsSync(stateFile(dir)) && !existsSync(controlFile(dir)))
    throw new CustosError<LinkErrorCode>(
      "LINKS_NOT_ENABLED",
      `the testnet in ${dir} has no link proxy: start it with custos testnet up --faults`,
    );
  const before = readControl(dir);
  const next = { ...change(before), version: before.version + 1 };
  await writeJson(controlFile(dir), next);
  const end = Date.now() + (o.timeoutMs ?? 15_000);
  for (;;) {
    const s = await readLinkState(dir);
    if (s && s.version >= next.version) return next;
    if (o.proxyAlive && !o.proxyAlive())
      throw new CustosError<LinkErrorCode>(
        "LINKS_NOT_RUNNING",
        `the link proxy of ${dir} is not running (custos testnet up --dir ${dir} --reuse starts it again)`,
      );
    if (Date.now() > end)
      throw new CustosError<LinkErrorCode>(
        "LINKS_NOT_RUNNING",
        `the link proxy of ${dir} did not apply the change within ${o.timeoutMs ?? 15_000} ms`,
      );
    await sleep(50);
  }
}

/** Small seeded generator (mulberry32): fault decisions repeat for a seed and connection order. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One direction of one proxied connection: chunks leave in order, each at its time. */
class Pipe {
  private queue: { at: number; data: Buffer }[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private lastAt = 0;
  private lossStreak = 0;
  /** Bytes were dropped (a cut): the stream is broken. */
  poisoned = false;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly key: string,
    private readonly proxy: LinkProxy,
  ) {
    src.on("data", (d: Buffer) => this.push(d));
  }

  private push(data: Buffer): void {
    const p = this.proxy;
    p.counters.bytes += data.length;
    if (!p.kernel && p.isCut(this.key)) {
      this.poisoned = true;
      p.counters.droppedBytes += data.length;
      return;
    }
    const s = p.settings(this.key);
    const rnd = p.random;
    const now = Date.now();
    let at = now + (s.delayMs ?? 0) + (s.jitterMs ? rnd() * s.jitterMs : 0);
    // in network namespaces the kernel drops packets for loss and paces the link for bandwidth
    if (!p.kernel && s.loss && rnd() < s.loss) {
      at += Math.min(3200, 200 * 2 ** this.lossStreak);
      this.lossStreak++;
      p.counters.lostChunks++;
    } else this.lossStreak = 0;
    let cost = data.length;
    if (s.duplicate && rnd() < s.duplicate) {
      cost *= 2;
      p.counters.duplicatedChunks++;
    }
    at = Math.max(at, this.lastAt);
    if (!p.kernel && s.bandwidth && s.bandwidth > 0) at += (cost / s.bandwidth) * 1000;
    this.lastAt = at;
    if (at <= now && this.queue.length === 0) {
      this.dst.write(data);
      return;
    }
    p.counters.delayedChunks++;
    this.queue.push({ at, data });
    this.queuedBytes += data.length;
    // backpressure: a slow link must not buffer without bound in the proxy
    if (this.queuedBytes > 8 * 1024 * 1024) this.src.pause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, (this.queue[0]?.at ?? 0) - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const now = Date.now();
      while (this.queue.length > 0 && (this.queue[0]?.at ?? 0) <= now) {
        const c = this.queue.shift() as { at: number; data: Buffer };
        this.queuedBytes -= c.data.length;
        if (!this.dst.destroyed) this.dst.write(c.data);
      }
      if (this.queuedBytes < 1024 * 1024 && this.src.isPaused()) this.src.resume();
      this.schedule();
    }, wait);
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
  }
}

class ProxiedConnection {
  pipes: Pipe[] = [];
  upstream: Socket | undefined;
  /** Accepted while the link was cut: never connected onwards. */
  hung = false;

  constructor(
    readonly from: number,
    readonly to: number,
    readonly client: Socket,
  ) {}

  get poisoned(): boolean {
    return this.hung || this.pipes.some((p) => p.poisoned);
  }

  destroy(): void {
    for (const p of this.pipes) p.stop();
    this.client.destroy();
    this.upstream?.destroy();
  }
}

/** The proxy process of one testnet (`custos testnet link-proxy --dir DIR`, started by up --faults). */
export class LinkProxy {
  private readonly servers: Server[] = [];
  private readonly conns = new Set<ProxiedConnection>();
  private control: LinkControl = { version: 0, seed: 1, cuts: [], links: {} };
  private cutSet = new Set<string>();
  private poll: NodeJS.Timeout | undefined;
  private stateWrittenAt = 0;
  random: () => number = seededRandom(1);
  readonly counters = {
    closedAfterCut: 0,
    bytes: 0,
    droppedBytes: 0,
    delayedChunks: 0,
    lostChunks: 0,
    duplicatedChunks: 0,
  };

  constructor(
    private readonly o: {
      dir: string;
      /** The real libp2p port of each node, by index. */
      targets: number[];
      basePort: number;
      /**
       * Nodes in network namespaces (netns.ts): the link i -> j is served on `listen(j)` (j's
       * face), connects onwards to `target(j)` from `source(i)` (i's face), and `kernel` applies
       * cuts, loss and bandwidth to the nodes' egress before a version is acknowledged. Without
       * it, everything is on 127.0.0.1 and the proxy does all of it.
       */
      netns?: {
        listen: (j: number) => string;
        target: (j: number) => string;
        source: (i: number) => string;
        kernel: (control: LinkControl) => Promise<void>;
      };
    },
  ) {}

  /** Cuts, loss and bandwidth are the kernel's (nodes in namespaces): the proxy only delays. */
  get kernel(): boolean {
    return this.o.netns !== undefined;
  }

  isCut(key: string): boolean {
    return this.cutSet.has(key);
  }

  settings(key: string): LinkSettings {
    return this.control.links[key] ?? {};
  }

  async start(): Promise<void> {
    const n = this.o.targets.length;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const server = createServer((s) => this.accept(i, j, s));
        const port = linkPort(this.o.basePort, n, i, j);
        // a port that a dying earlier proxy still holds comes free shortly: a few tries
        for (let attempt = 0; ; attempt++) {
          try {
            await new Promise<void>((ok, fail) => {
              server.once("error", fail);
              server.listen(port, this.o.netns?.listen(j) ?? "127.0.0.1", () => {
                server.off("error", fail);
                ok();
              });
            });
            break;
          } catch (err) {
            if (attempt >= 50 || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
            await sleep(200);
          }
        }
        this.servers.push(server);
      }
    // in namespaces the kernel's state is made from links.json afresh (the namespaces may be new)
    if (this.kernel) this.control = { ...this.control, version: -1 };
    await this.reload();
    let busy = false;
    this.poll = setInterval(() => {
      if (busy) return;
      busy = true;
      this.reload()
        .catch(() => {})
        .finally(() => {
          busy = false;
        });
    }, 100);
  }

  private accept(from: number, to: number, client: Socket): void {
    const c = new ProxiedConnection(from, to, client);
    this.conns.add(c);
    client.on("error", () => {});
    client.on("close", () => {
      c.destroy();
      this.conns.delete(c);
    });
    if (!this.kernel && (this.isCut(`${from}>${to}`) || this.isCut(`${to}>${from}`))) {
      // the SYN went nowhere: the dialer waits for its own timeout
      c.hung = true;
      client.on("data", () => {});
      return;
    }
    const ns = this.o.netns;
    const up = tcpConnect({
      host: ns?.target(to) ?? "127.0.0.1",
      port: this.o.targets[to] as number,
      ...(ns ? { localAddress: ns.source(from) } : {}),
    });
    c.upstream = up;
    up.on("error", () => {});
    up.on("close", () => client.destroy());
    up.setNoDelay(true);
    client.setNoDelay(true);
    c.pipes = [new Pipe(client, up, `${from}>${to}`, this), new Pipe(up, client, `${to}>${from}`, this)];
  }

  /** Reads links.json when it changed; closes connections a healed cut left broken. */
  private async reload(): Promise<void> {
    let next: LinkControl;
    try {
      next = JSON.parse(await readFile(controlFile(this.o.dir), "utf8")) as LinkControl;
    } catch {
      next = this.control;
    }
    const changed = next.version !== this.control.version;
    if (changed) {
      // in force in the kernel before the version is acknowledged (a failure is retried next poll)
      await this.o.netns?.kernel(next);
      this.control = next;
      this.cutSet = new Set(next.cuts);
      this.random = seededRandom(next.seed ^ next.version);
      for (const c of this.conns) {
        const cut = this.isCut(`${c.from}>${c.to}`) || this.isCut(`${c.to}>${c.from}`);
        if (!cut && c.poisoned) {
          c.destroy();
          this.conns.delete(c);
          this.counters.closedAfterCut++;
        }
      }
    }
    // the applied version at once; the counters once a second
    if (!changed && Date.now() - this.stateWrittenAt < 1000) return;
    this.stateWrittenAt = Date.now();
    const state: LinkState = {
      version: this.control.version,
      pid: process.pid,
      connections: this.conns.size,
      ...this.counters,
    };
    await writeJson(stateFile(this.o.dir), state);
  }

  async stop(): Promise<void> {
    if (this.poll) clearInterval(this.poll);
    for (const c of this.conns) c.destroy();
    this.conns.clear();
    await Promise.all(this.servers.map((s) => new Promise<void>((ok) => s.close(() => ok()))));
  }
}

/** Parses "0,1|2,3" (indexes or names) into the directed cuts that separate those groups. */
export function partitionCuts(groups: number[][]): string[] {
  const cuts: string[] = [];
  groups.forEach((g, a) => {
    groups.forEach((h, b) => {
      if (a === b) return;
      for (const i of g) for (const j of h) cuts.push(`${i}>${j}`);
    });
  });
  return cuts;
}
