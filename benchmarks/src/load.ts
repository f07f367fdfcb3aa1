// Load-generation helpers shared by the benchmarks that drive real node processes
// (single-node, testnet): pre-signed transfers, an open-loop sender, commit watching, the
// machine's SM2 ceiling and process figures.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { availableParallelism, cpus } from "node:os";
import { Worker } from "node:worker_threads";
import { encode } from "@custos/codec";
import { generateKeyPair, NativeSm2Backend, type Sm2KeyPair, VerifierPool } from "@custos/crypto";
import { signTx } from "@custos/types";
import { toHex } from "@custos/utils";
import { WebSocket } from "ws";
import { median, opsPerSecond } from "./stats.js";

export interface Machine {
  cpus: number;
  parallelism: number;
  model: string;
  node: string;
}

export function machine(): Machine {
  return {
    cpus: cpus().length,
    parallelism: availableParallelism(),
    model: cpus()[0]?.model ?? "unknown",
    node: process.versions.node,
  };
}

export const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));

/**
 * A lean JSON-RPC sender: the load generator shares the machine with the node(s), so it must
 * spend as little CPU per request as it can (node:http's client took about twice the load
 * generator's share, fetch more: benchmarks/README.md, "A lighter load generator"). It speaks
 * the little HTTP/1.1 it needs straight to keep-alive sockets: one POST per call, one request at
 * a time on each of up to `maxSockets` connections (no pipelining: the node sees what
 * node:http's Agent sent it), the answer read by its Content-Length or its chunks.
 */
export class RawSender {
  private readonly host: string;
  private readonly port: number;
  private readonly idle: HttpConn[] = [];
  private readonly waiting: (() => void)[] = [];
  private open = 0;
  private id = 1;
  private closed = false;
  constructor(
    url: string,
    private readonly maxSockets = 64,
  ) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
  }
  /** Refusals by error code; NETWORK for a request that failed twice at the socket level. */
  readonly refusals = new Map<string, number>();

  private refuse(code: string, n = 1): void {
    this.refusals.set(code, (this.refusals.get(code) ?? 0) + n);
  }

  /** Sends txs (hex) as one request or a batch; resolves to which of them were refused. */
  async send(hexes: string[]): Promise<boolean[]> {
    const first = this.id;
    const reqs = hexes.map((h) => ({ jsonrpc: "2.0", id: this.id++, method: "custos_sendTx", params: [h] }));
    const body = JSON.stringify(reqs.length === 1 ? reqs[0] : reqs);
    // a keep-alive socket the server closed while idle fails once; the request is sent again
    let r = await this.post(body, first, hexes.length);
    if (r === "network") r = await this.post(body, first, hexes.length);
    if (r === "network") {
      this.refuse("NETWORK", hexes.length);
      return hexes.map(() => true);
    }
    return r;
  }

  private async post(body: string, first: number, count: number): Promise<boolean[] | "network"> {
    const conn = await this.connection();
    let answer: Answer;
    try {
      answer = await conn.post(
        `POST / HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    } finally {
      this.release(conn);
    }
    if (answer === "network") return "network";
    const refused = Array.from({ length: count }, () => true);
    if (answer === "bad") {
      this.refuse("BAD_RESPONSE", count);
      return refused;
    }
    try {
      const out = JSON.parse(answer.text);
      const list = (Array.isArray(out) ? out : [out]) as {
        id?: number;
        error?: { data?: { code?: string } };
      }[];
      let answered = 0;
      for (const r of list) {
        const k = typeof r.id === "number" ? r.id - first : -1;
        if (k < 0 || k >= count) continue;
        answered++;
        if (r.error) this.refuse(r.error.data?.code ?? "UNKNOWN");
        else refused[k] = false;
      }
      if (answered < count) this.refuse("NO_ANSWER", count - answered);
    } catch {
      this.refuse("BAD_RESPONSE", count);
    }
    return refused;
  }

  /** An idle connection, a new one while fewer than maxSockets are open, or the next one freed. */
  private async connection(): Promise<HttpConn> {
    for (;;) {
      const c = this.idle.pop();
      if (c?.usable) return c;
      if (c) continue; // closed while idle
      if (this.open < this.maxSockets) {
        this.open++;
        return new HttpConn(this.host, this.port, () => {
          this.open--;
          this.waiting.shift()?.(); // a request waiting for a free socket may open one now
        });
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private release(c: HttpConn): void {
    if (c.usable && !this.closed) this.idle.push(c);
    else c.destroy();
    this.waiting.shift()?.();
  }

  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
  }
}

/** An HTTP/1.1 response at the start of `buf`: its body text; undefined while incomplete. */
function response(buf: Buffer): { text: string; used: number; close: boolean } | "bad" | undefined {
  const end = buf.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const head = buf.toString("latin1", 0, end);
  if (!head.startsWith("HTTP/1.1 ")) return "bad";
  const close = /\r\nconnection: *close/i.test(head);
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  if (length) {
    const used = end + 4 + Number(length[1]);
    if (buf.length < used) return undefined;
    return { text: buf.toString("utf8", end + 4, used), used, close };
  }
  if (!/\r\ntransfer-encoding: *chunked/i.test(head)) return "bad";
  const body = dechunk(buf, end + 4);
  return typeof body === "object" ? { ...body, close } : body;
}

/** A chunked body from `at`: its text and where it ends; undefined while incomplete. */
function dechunk(buf: Buffer, at: number): { text: string; used: number } | "bad" | undefined {
  const parts: Buffer[] = [];
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = Number.parseInt(buf.toString("latin1", at, eol), 16);
    if (!Number.isSafeInteger(size) || size < 0) return "bad";
    if (buf.length < eol + 2 + size + 2) return undefined;
    if (size === 0) return { text: Buffer.concat(parts).toString("utf8"), used: eol + 4 };
    parts.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** An answer's body, or why there is none: the connection failed, or the answer was not HTTP/1.1. */
type Answer = { text: string } | "network" | "bad";

/** One keep-alive HTTP/1.1 connection carrying one request at a time. */
class HttpConn {
  private readonly socket: Socket;
  private buf: Buffer | undefined;
  private current: ((answer: Answer) => void) | undefined;
  private alive = true;

  constructor(host: string, port: number, onClose: () => void) {
    this.socket = connect({ host, port, noDelay: true });
    this.socket.on("data", (d) => this.data(d));
    this.socket.on("error", (e) => {
      if (process.env.BENCH_DEBUG)
        process.stderr.write(`socket error: ${(e as NodeJS.ErrnoException).code} ${e.message}\n`);
    });
    this.socket.on("close", () => {
      this.alive = false;
      onClose();
      this.finish("network");
    });
  }

  get usable(): boolean {
    return this.alive && this.current === undefined;
  }

  post(request: string): Promise<Answer> {
    if (!this.alive) return Promise.resolve("network");
    return new Promise((resolve) => {
      this.current = resolve;
      this.buf = undefined;
      this.socket.write(request);
    });
  }

  private data(d: Buffer): void {
    if (this.current === undefined) {
      this.destroy(); // nothing asked: not a server to keep
      return;
    }
    this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
    const r = response(this.buf);
    if (r === undefined) return;
    if (r === "bad") {
      this.finish("bad");
      this.destroy();
      return;
    }
    const close = r.close || this.buf.length > r.used;
    this.buf = undefined;
    this.finish({ text: r.text });
    if (close) this.destroy();
  }

  private finish(answer: Answer): void {
    const f = this.current;
    this.current = undefined;
    f?.(answer);
  }

  destroy(): void {
    this.alive = false;
    this.socket.destroy();
  }
}

/** Adds up refusals by code over several senders. */
export function refusalsOf(senders: readonly RawSender[]): Record<string, number> {
  const all = new Map<string, number>();
  for (const s of senders) for (const [k, n] of s.refusals) all.set(k, (all.get(k) ?? 0) + n);
  return Object.fromEntries(all);
}

/** The p-th percentile of an ascending list (nearest rank); 0 for an empty list. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export interface LatencySummary {
  p50: number;
  p95: number;
  p99: number;
}

/** p50/p95/p99 in whole ms of a list of latencies (sorted in place). */
export function latencySummary(lat: number[]): LatencySummary {
  lat.sort((a, b) => a - b);
  return {
    p50: Math.round(percentile(lat, 50)),
    p95: Math.round(percentile(lat, 95)),
    p99: Math.round(percentile(lat, 99)),
  };
}

/** Mean, median and longest of the gaps between consecutive values (ms), 0 for fewer than two. */
export function intervals(times: readonly number[]): { mean: number; median: number; max: number } {
  const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
  if (gaps.length === 0) return { mean: 0, median: 0, max: 0 };
  return {
    mean: Math.round(gaps.reduce((a, b) => a + b, 0) / gaps.length),
    median: Math.round(median(gaps)),
    max: Math.round(Math.max(...gaps)),
  };
}

/** CPU seconds and RSS of a process, from /proc (Linux). */
export function procStats(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rssPages = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]);
  return { cpuSeconds: ticks / 100, rssBytes: rssPages * 4096 };
}

export interface Ceiling {
  /** SM2 verifications per second on one core (native backend). */
  verifyPerCore: number;
  /** SM2 verifications per second through the verifier pool on all cores. */
  verifyPool: number;
  threads: number;
}

/**
 * The machine's own ceiling, measured in the run: SM2 verification on one core and through the
 * verifier pool on all of them (every node verifies every transaction once, at admission).
 * Zeros when the native addon is missing.
 */
export async function measureVerifyCeiling(): Promise<Ceiling> {
  const threads = availableParallelism();
  let native: NativeSm2Backend;
  try {
    native = new NativeSm2Backend();
  } catch {
    return { verifyPerCore: 0, verifyPool: 0, threads };
  }
  const msg = new Uint8Array(200);
  const signed = Array.from({ length: 64 }, () => {
    const k = generateKeyPair();
    return { publicKey: k.publicKey, message: msg, signature: native.sign(k.privateKey, msg) };
  });
  const items = Array.from({ length: 8000 }, (_, i) => signed[i % signed.length] as (typeof signed)[number]);
  const one = items[0] as (typeof items)[number];
  const verifyPerCore = Math.round(
    opsPerSecond(() => native.verify(one.publicKey, one.message, one.signature), 500),
  );
  const pool = new VerifierPool({ backend: native, threads });
  try {
    await pool.verifyBatch(items.slice(0, 512)); // warm the threads
    const rates: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      await pool.verifyBatch(items);
      rates.push((items.length * 1000) / (performance.now() - t0));
    }
    return { verifyPerCore, verifyPool: Math.round(median(rates)), threads };
  } finally {
    await pool.close();
  }
}

export interface SignedItem {
  hex: string;
  hash: string;
}

/** What to sign: transfer i goes from senders[i % senders.length] to recipients[i % recipients.length]. */
export interface TransferPlan {
  chainId: string;
  blockLimit: number;
  senders: readonly Sm2KeyPair[];
  recipients: readonly string[];
  count: number;
  /** Index of the first transfer (a slice of a larger plan). */
  offset?: number;
  amountFen?: bigint;
}

/** Signs e-CNY transfers of `amountFen` (1 fen by default) on this thread. */
export function signTransfers(o: TransferPlan): SignedItem[] {
  const out: SignedItem[] = [];
  const amount = o.amountFen ?? 1n;
  const first = o.offset ?? 0;
  for (let i = first; i < first + o.count; i++) {
    const s = o.senders[i % o.senders.length] as Sm2KeyPair;
    const stx = signTx(
      {
        version: 1,
        chainId: o.chainId,
        nonce: new Uint8Array(randomBytes(16)),
        blockLimit: o.blockLimit,
        sender: s.publicKey,
        to: "ecny",
        method: "transfer",
        args: encode([o.recipients[i % o.recipients.length], amount]),
        value: 0n,
        memo: null,
      },
      s.privateKey,
    );
    out.push({ hex: `0x${toHex(stx.bytes)}`, hash: `0x${toHex(stx.hash)}` });
  }
  return out;
}

/**
 * Signs a phase's transfers before it starts, on one worker thread per core (the nodes are idle
 * then), in the same order and with the same senders and recipients as signTransfers.
 */
export async function signTransfersParallel(o: TransferPlan): Promise<SignedItem[]> {
  const threads = Math.min(availableParallelism(), Math.max(1, Math.floor(o.count / 500)));
  if (threads <= 1) return signTransfers(o);
  const per = Math.ceil(o.count / threads);
  const first = o.offset ?? 0;
  const slices = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const plan: TransferPlan = {
        ...o,
        offset: first + t * per,
        count: Math.max(0, Math.min(per, o.count - t * per)),
      };
      return new Promise<SignedItem[]>((resolve, reject) => {
        const w = new Worker(new URL("./signWorker.js", import.meta.url), { workerData: plan });
        w.once("message", (items: SignedItem[]) => {
          resolve(items);
          void w.terminate();
        });
        w.once("error", reject);
        w.once("exit", (code) => {
          if (code !== 0) reject(new Error(`signing worker exited with ${code}`));
        });
      });
    }),
  );
  return slices.flat();
}

/** One contract call to sign: `sender` indexes the plan's senders. */
export interface PlannedCall {
  sender: number;
  to: string;
  method: string;
  args: unknown[];
  value: bigint;
}

/** What to sign: any calls (the prepaid workload's purchases and consumptions). */
export interface CallPlan {
  chainId: string;
  blockLimit: number;
  senders: readonly Sm2KeyPair[];
  calls: readonly PlannedCall[];
}

/** Signs planned calls on this thread, in order. */
export function signCalls(o: CallPlan): SignedItem[] {
  return o.calls.map((c) => {
    const s = o.senders[c.sender] as Sm2KeyPair;
    const stx = signTx(
      {
        version: 1,
        chainId: o.chainId,
        nonce: new Uint8Array(randomBytes(16)),
        blockLimit: o.blockLimit,
        sender: s.publicKey,
        to: c.to,
        method: c.method,
        args: encode(c.args),
        value: c.value,
        memo: null,
      },
      s.privateKey,
    );
    return { hex: `0x${toHex(stx.bytes)}`, hash: `0x${toHex(stx.hash)}` };
  });
}

/** signCalls on one worker thread per core, before a phase starts; the same order. */
export async function signCallsParallel(o: CallPlan): Promise<SignedItem[]> {
  const threads = Math.min(availableParallelism(), Math.max(1, Math.floor(o.calls.length / 500)));
  if (threads <= 1) return signCalls(o);
  const per = Math.ceil(o.calls.length / threads);
  const slices = await Promise.all(
    Array.from({ length: threads }, (_, t) => {
      const plan: CallPlan = { ...o, calls: o.calls.slice(t * per, (t + 1) * per) };
      return new Promise<SignedItem[]>((resolve, reject) => {
        const w = new Worker(new URL("./signWorker.js", import.meta.url), { workerData: { calls: plan } });
        w.once("message", (items: SignedItem[]) => {
          resolve(items);
          void w.terminate();
        });
        w.once("error", reject);
        w.once("exit", (code) => {
          if (code !== 0) reject(new Error(`signing worker exited with ${code}`));
        });
      });
    }),
  );
  return slices.flat();
}

/**
 * Drives `count` items open loop: item i is due at t0 + i/rate (rate null: as fast as the
 * in-flight limit allows), `batch` items per call of `send(from, to, due)`, at most `inflight`
 * calls outstanding. `due` is when the call was scheduled (performance.now() time): a sender that
 * fell behind still measures latency from the schedule, so its own delay is not hidden.
 * Stops starting new calls at `stopAfterMs` after t0. Resolves once every started call has
 * finished, with t0 (performance.now()) and how many items were started.
 */
export async function driveOpenLoop(o: {
  count: number;
  rate: number | null;
  batch: number;
  inflight: number;
  stopAfterMs?: number;
  send: (from: number, to: number, due: number) => Promise<void>;
}): Promise<{ t0: number; started: number }> {
  // a counter and one waiter, not Promise.race over the in-flight set: that costs O(in flight)
  // per call, and the load generator would spend the most CPU exactly when the nodes fall behind
  let active = 0;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const settled = () => {
    active--;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const slot = () => new Promise<void>((res) => (wake = res));
  const t0 = performance.now();
  let started = 0;
  for (let i = 0; i < o.count && failure === undefined; i += o.batch) {
    let due = performance.now();
    if (o.rate !== null) {
      due = t0 + (i * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
    }
    while (active >= o.inflight) await slot();
    if (o.stopAfterMs !== undefined && performance.now() - t0 > o.stopAfterMs) break;
    const to = Math.min(o.count, i + o.batch);
    active++;
    o.send(i, to, o.rate === null ? performance.now() : due)
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(settled);
    started = to;
  }
  while (active > 0) await slot();
  if (failure !== undefined) throw failure;
  return { t0, started };
}

export interface SeenBlock {
  /** performance.now() when the block's notification arrived. */
  at: number;
  height: number;
  /** The block header's timestamp (ms since the epoch, set by its proposer). */
  timestamp: number;
  txs: number;
}

/** Watches committed blocks over WebSocket and records when each tx hash was first seen. */
export class CommitWatcher {
  readonly seen = new Map<string, number>();
  readonly blocks: SeenBlock[] = [];
  private ws: WebSocket;
  constructor(url: string) {
    this.ws = new WebSocket(url.replace(/^http/, "ws"));
  }
  /** performance.now() of each block's arrival. */
  get blockTimes(): number[] {
    return this.blocks.map((b) => b.at);
  }
  async open(): Promise<void> {
    await new Promise((res, rej) => this.ws.once("open", res).once("error", rej));
    this.ws.on("message", (m) => {
      const msg = JSON.parse(String(m));
      const block = msg.params?.result;
      if (!block?.txs) return;
      const now = performance.now();
      this.blocks.push({ at: now, height: block.height, timestamp: block.timestamp, txs: block.txs.length });
      for (const h of block.txs as string[]) this.seen.set(h, now);
    });
    this.ws.send(
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_subscribe", params: ["newBlocks"] }),
    );
    await sleep(100);
  }
  close(): void {
    this.ws.close();
  }
}

/** Fixed-width text table: numbers right-aligned, the first column left-aligned. */
export function table(header: string[], rows: (string | number)[][], widths: number[]): string[] {
  const fmt = (cells: (string | number)[]) =>
    cells
      .map((c, i) => (i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0)))
      .join("");
  return [fmt(header), ...rows.map(fmt)];
}
