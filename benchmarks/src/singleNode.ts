import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { Agent, request } from "node:http";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile, NativeSm2Backend, type Sm2KeyPair, VerifierPool } from "@custos/crypto";
import { initHome } from "@custos/node";
import { signTx } from "@custos/types";
import { toHex } from "@custos/utils";
import { WebSocket } from "ws";
import { median, opsPerSecond } from "./stats.js";

export interface SingleNodeOptions {
  runs: number;
  ms: number;
  json: boolean;
  rates: number[];
  seconds: number;
  /** Transactions per JSON-RPC request (a batch); 1 = one request per transaction. */
  batch: number;
}

/**
 * A lean JSON-RPC sender on node:http with keep-alive: the load generator shares the machine
 * with the node, so it must spend as little CPU per request as it can (fetch costs ~3x more).
 */
class RawSender {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private readonly host: string;
  private readonly port: number;
  private id = 1;
  constructor(url: string) {
    const u = new URL(url);
    this.host = u.hostname;
    this.port = Number(u.port);
  }
  /** Refusals by error code; NETWORK for a request that failed twice at the socket level. */
  readonly refusals = new Map<string, number>();

  /** Sends txs (hex) as one request or a batch; resolves to how many were refused. */
  async send(hexes: string[]): Promise<number> {
    const reqs = hexes.map((h) => ({ jsonrpc: "2.0", id: this.id++, method: "custos_sendTx", params: [h] }));
    const body = JSON.stringify(reqs.length === 1 ? reqs[0] : reqs);
    // a keep-alive socket the server closed while idle fails once; the request is sent again
    let r = await this.post(body, hexes.length);
    if (r === "network") r = await this.post(body, hexes.length);
    if (r === "network") {
      this.refusals.set("NETWORK", (this.refusals.get("NETWORK") ?? 0) + hexes.length);
      return hexes.length;
    }
    return r;
  }

  private post(body: string, count: number): Promise<number | "network"> {
    return new Promise((resolve) => {
      const req = request(
        {
          host: this.host,
          port: this.port,
          method: "POST",
          path: "/",
          agent: this.agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            try {
              const out = JSON.parse(Buffer.concat(chunks).toString());
              const list = (Array.isArray(out) ? out : [out]) as { error?: { data?: { code?: string } } }[];
              let refused = 0;
              for (const r of list) {
                if (!r.error) continue;
                refused++;
                const code = r.error.data?.code ?? "UNKNOWN";
                this.refusals.set(code, (this.refusals.get(code) ?? 0) + 1);
              }
              resolve(refused);
            } catch {
              this.refusals.set("BAD_RESPONSE", (this.refusals.get("BAD_RESPONSE") ?? 0) + count);
              resolve(count);
            }
          });
        },
      );
      req.on("error", (e) => {
        if (process.env.BENCH_DEBUG)
          process.stderr.write(`socket error: ${(e as NodeJS.ErrnoException).code} ${e.message}\n`);
        resolve("network");
      });
      req.end(body);
    });
  }
  close(): void {
    this.agent.destroy();
  }
}

const BIN = fileURLToPath(new URL("../../cli/bin/custos.js", import.meta.url));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** CPU seconds and RSS of a process, from /proc (Linux). */
function procStats(pid: number): { cpuSeconds: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  const ticks = Number(stat[11]) + Number(stat[12]);
  const rssPages = Number(readFileSync(`/proc/${pid}/statm`, "utf8").split(" ")[1]);
  return { cpuSeconds: ticks / 100, rssBytes: rssPages * 4096 };
}

async function startNode(home: string): Promise<{ proc: ChildProcess; url: string }> {
  // CUSTOS_BENCH_NODE_ARGS passes Node flags to the node process only (e.g. --cpu-prof)
  const extra = (process.env.CUSTOS_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  const proc = spawn(
    process.execPath,
    [...extra, BIN, "node", "start", "--home", home, "--rpc-listen", "127.0.0.1:0", "--json"],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    proc.stdout?.on("data", (d) => {
      out += String(d);
      const m = /"rpc":\s*"([^"]+)"/.exec(out);
      if (m) resolve(m[1] as string);
    });
    proc.once("exit", (c) => reject(new Error(`node exited with ${c}`)));
  });
  return { proc, url };
}

interface Phase {
  name: string;
  offeredRate: number | null;
  submitted: number;
  committed: number;
  failedReceipts: number;
  rejected: number;
  successTps: number;
  latencyMs: { p50: number; p95: number; p99: number };
  blocks: number;
  blockIntervalMs: number;
  nodeCpuPercent: number;
  nodeRssMiB: number;
  loaderCpuPercent: number;
}

/** Watches committed blocks over WebSocket and records when each tx hash was first seen. */
class CommitWatcher {
  readonly seen = new Map<string, number>();
  readonly blockTimes: number[] = [];
  private ws: WebSocket;
  constructor(url: string) {
    this.ws = new WebSocket(url.replace(/^http/, "ws"));
  }
  async open(): Promise<void> {
    await new Promise((res, rej) => this.ws.once("open", res).once("error", rej));
    this.ws.on("message", (m) => {
      const msg = JSON.parse(String(m));
      const block = msg.params?.result;
      if (!block?.txs) return;
      const now = performance.now();
      this.blockTimes.push(now);
      for (const h of block.txs as string[]) this.seen.set(h, now);
    });
    this.ws.send(
      JSON.stringify({ jsonrpc: "2.0", id: 1, method: "custos_subscribe", params: ["newBlocks"] }),
    );
    await new Promise((r) => setTimeout(r, 100));
  }
  close(): void {
    this.ws.close();
  }
}

export async function runSingleNodeBench(o: SingleNodeOptions): Promise<Record<string, unknown>> {
  const home = await mkdtemp(join(tmpdir(), "custos-bench-"));
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  let node: { proc: ChildProcess; url: string } | undefined;
  try {
    // the machine's own ceiling, measured in this run: SM2 verification on one core and on all
    let ceiling = { verifyPerCore: 0, verifyPool: 0 };
    try {
      const native = new NativeSm2Backend();
      const k = (await import("@custos/crypto")).generateKeyPair();
      const msg = new Uint8Array(200);
      const sig = native.sign(k.privateKey, msg);
      const pool = new VerifierPool({ backend: native });
      const items = Array.from({ length: 8000 }, () => ({
        publicKey: k.publicKey,
        message: msg,
        signature: sig,
      }));
      const t0 = performance.now();
      await pool.verifyBatch(items);
      ceiling = {
        verifyPerCore: Math.round(opsPerSecond(() => native.verify(k.publicKey, msg, sig), 500)),
        verifyPool: Math.round((items.length * 1000) / (performance.now() - t0)),
      };
      await pool.close();
    } catch {
      // no native addon: the ceiling stays unknown
    }
    const r = await initHome({ home, dev: true, kdfIterations: 1000 });
    const password = (await readFile(join(home, "dev-password"), "utf8")).trim();
    node = await startNode(home);
    const pid = node.proc.pid as number;
    const client = new CustosClient(node.url);
    const accounts = r.accounts ?? [];
    const senders: Sm2KeyPair[] = [];
    for (const a of accounts.filter((a) =>
      ["committee", "institution", "merchant", "auditor", "regulator"].includes(a.role),
    )) {
      senders.push(await loadKeystoreFile(a.keyFile, password));
    }
    const operator = await loadKeystoreFile(
      accounts.find((a) => a.role === "operator")?.keyFile as string,
      password,
    );
    const opWallet = new Wallet(client, operator);
    await Promise.all(
      senders.map((s, i) =>
        opWallet.send({ to: "ecny", method: "issue", args: [s.address, 10n ** 12n, `bench-fund-${i}`] }),
      ),
    );
    const receivers = accounts.filter((a) => a.role === "consumer").map((a) => a.address);

    const once: { name: string; rate: number | null; count: number }[] = [
      ...o.rates.map((rate) => ({ name: `fixed ${rate}/s`, rate, count: Math.round(rate * o.seconds) })),
      { name: "maximum rate", rate: null, count: Math.round(4000 * o.seconds) },
    ];
    // every phase o.runs times, interleaved, so that drift on a shared machine hits all of them
    const phases = Array.from({ length: o.runs }, () => once).flat();
    // signed before each phase (outside its measured time), so that every blockLimit is fresh
    const signPhase = async (count: number) => {
      const st = await client.status();
      const out: { hex: string; hash: string }[] = [];
      for (let i = 0; i < count; i++) {
        const s = senders[i % senders.length] as Sm2KeyPair;
        const stx = signTx(
          {
            version: 1,
            chainId: st.chainId,
            nonce: new Uint8Array(randomBytes(16)),
            blockLimit: st.height + st.blockLimitWindow,
            sender: s.publicKey,
            to: "ecny",
            method: "transfer",
            args: encode([receivers[i % receivers.length], 1n]),
            value: 0n,
            memo: null,
          },
          s.privateKey,
        );
        out.push({ hex: `0x${toHex(stx.bytes)}`, hash: `0x${toHex(stx.hash)}` });
      }
      return out;
    };

    const sender = new RawSender(node.url);
    const watcher = new CommitWatcher(node.url);
    await watcher.open();
    const results: Phase[] = [];
    for (const p of phases) {
      log(`${p.name}: signing ${p.count} transfers`);
      const batch = await signPhase(p.count);
      // signing blocked this event loop; let the sockets' pending events (idle closes) run first
      await new Promise((res) => setTimeout(res, 200));
      log(`${p.name}: sending`);
      const submitAt = new Map<string, number>();
      let rejected = 0;
      const before = procStats(pid);
      const loaderBefore = procStats(process.pid);
      const blocksBefore = watcher.blockTimes.length;
      const t0 = performance.now();
      const send = async (items: { hex: string; hash: string }[]) => {
        const now = performance.now();
        for (const it of items) submitAt.set(it.hash, now);
        const refused = await sender.send(items.map((it) => it.hex));
        if (refused > 0) {
          rejected += refused;
          // which ones were refused is not tracked per item in a batch: those never commit and are not counted
        }
      };
      const inflight = new Set<Promise<void>>();
      const limit = Math.max(8, Math.ceil(256 / o.batch));
      for (let i = 0; i < batch.length; i += o.batch) {
        if (p.rate !== null) {
          const due = t0 + (i * 1000) / p.rate;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((res) => setTimeout(res, wait));
        }
        while (inflight.size >= limit) await Promise.race(inflight);
        const pr = send(batch.slice(i, i + o.batch)).finally(() => inflight.delete(pr));
        inflight.add(pr);
      }
      await Promise.all(inflight);
      // wait for the last commits (bounded)
      const deadline = performance.now() + 30_000;
      while (
        performance.now() < deadline &&
        [...submitAt.keys()].filter((h) => !watcher.seen.has(h)).length > rejected
      ) {
        await new Promise((res) => setTimeout(res, 50));
      }
      const after = procStats(pid);
      const loaderAfter = procStats(process.pid);
      const lat: number[] = [];
      let lastCommit = t0;
      for (const [h, at] of submitAt) {
        const c = watcher.seen.get(h);
        if (c !== undefined) {
          lat.push(c - at);
          lastCommit = Math.max(lastCommit, c);
        }
      }
      lat.sort((a, b) => a - b);
      const elapsed = Math.max(0.001, (lastCommit - t0) / 1000);
      const bt = watcher.blockTimes.slice(blocksBefore);
      const intervals = bt.slice(1).map((t, i) => t - (bt[i] as number));
      // receipts of a sample tell whether transfers succeeded
      let failedReceipts = 0;
      for (const item of batch.slice(0, 20)) {
        const v = await client.getTx(item.hash).catch(() => undefined);
        if (v?.receipt && !v.receipt.success) failedReceipts++;
      }
      results.push({
        name: p.name,
        offeredRate: p.rate,
        submitted: batch.length,
        committed: lat.length,
        failedReceipts,
        rejected,
        successTps: Math.round(lat.length / elapsed),
        latencyMs: {
          p50: Math.round(percentile(lat, 50)),
          p95: Math.round(percentile(lat, 95)),
          p99: Math.round(percentile(lat, 99)),
        },
        blocks: bt.length,
        blockIntervalMs: Math.round(intervals.length ? median(intervals) : 0),
        nodeCpuPercent: Math.round(((after.cpuSeconds - before.cpuSeconds) / elapsed) * 100),
        nodeRssMiB: Math.round(after.rssBytes / 2 ** 20),
        loaderCpuPercent: Math.round(((loaderAfter.cpuSeconds - loaderBefore.cpuSeconds) / elapsed) * 100),
      });
    }
    watcher.close();
    sender.close();
    // per phase: the run with the median TPS, plus every run's TPS
    const summary = once.map((p) => {
      const all = results.filter((r) => r.name === p.name).sort((a, b) => a.successTps - b.successTps);
      const mid = all[Math.floor((all.length - 1) / 2)] as Phase;
      return { ...mid, runsTps: results.filter((r) => r.name === p.name).map((r) => r.successTps) };
    });
    const report = {
      benchmark: "single-node",
      date: new Date().toISOString(),
      machine: {
        cpus: cpus().length,
        parallelism: availableParallelism(),
        model: cpus()[0]?.model ?? "unknown",
        node: process.versions.node,
      },
      workload: `e-CNY transfers of 1 fen from 10 tier-1 members, signed before the run, ${o.batch === 1 ? "one JSON-RPC request each" : `${o.batch} per JSON-RPC batch request`}, up to 256 in flight; latency = submit to commit notification (WebSocket)`,
      ceiling: { sm2VerifyPerCore: ceiling.verifyPerCore, sm2VerifyPool: ceiling.verifyPool },
      refusals: Object.fromEntries(sender.refusals),
      method: `each phase run ${o.runs} times (interleaved); the run with the median TPS is shown, with every run's TPS`,
      phases: summary,
    };
    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const lines = [
        `single-node benchmark on ${report.machine.cpus} x ${report.machine.model}, Node ${report.machine.node}`,
        report.workload,
        report.method,
        `ceiling (same run): SM2 verify ${ceiling.verifyPerCore}/s on one core, ${ceiling.verifyPool}/s on all cores`,
        "",
        `${"phase".padEnd(16)}${"submitted".padStart(10)}${"committed".padStart(10)}${"rejected".padStart(9)}${"TPS".padStart(7)}${"p50".padStart(7)}${"p95".padStart(7)}${"p99".padStart(7)}${"blocks".padStart(8)}${"interval".padStart(9)}${"cpu%".padStart(6)}${"rss".padStart(6)}${"load%".padStart(7)}   runs (TPS)`,
        ...summary.map(
          (r) =>
            `${r.name.padEnd(16)}${String(r.submitted).padStart(10)}${String(r.committed).padStart(10)}${String(r.rejected).padStart(9)}${String(r.successTps).padStart(7)}${String(r.latencyMs.p50).padStart(7)}${String(r.latencyMs.p95).padStart(7)}${String(r.latencyMs.p99).padStart(7)}${String(r.blocks).padStart(8)}${String(r.blockIntervalMs).padStart(9)}${String(r.nodeCpuPercent).padStart(6)}${String(r.nodeRssMiB).padStart(6)}${String(r.loaderCpuPercent).padStart(7)}   ${r.runsTps.join(" ")}`,
        ),
        `refused at admission, all phases: ${JSON.stringify(Object.fromEntries(sender.refusals))}`,
        "",
        "latency and interval in ms, rss in MiB; cpu% and load% in % of one core for the node process and for this load generator (they share the machine)",
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    }
    return report;
  } finally {
    node?.proc.kill("SIGTERM");
    if (node)
      await new Promise((res) => (node?.proc.exitCode !== null ? res(null) : node.proc.once("exit", res)));
    await rm(home, { recursive: true, force: true });
  }
}
