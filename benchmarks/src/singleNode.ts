import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { initHome } from "@custos/node";
import {
  CommitWatcher,
  driveOpenLoop,
  intervals,
  latencySummary,
  machine,
  measureVerifyCeiling,
  procStats,
  RawSender,
  refusalsOf,
  type SignedItem,
  signTransfersParallel,
  sleep,
  table,
} from "./load.js";

export interface SingleNodeOptions {
  runs: number;
  ms: number;
  json: boolean;
  rates: number[];
  seconds: number;
  /** Transactions per JSON-RPC request (a batch); 1 = one request per transaction. */
  batch: number;
  /** Run the node without its audit index (config audit.index false), to measure what it costs. */
  auditIndex?: boolean;
}

const BIN = fileURLToPath(new URL("../../cli/bin/custos.js", import.meta.url));

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

export async function runSingleNodeBench(o: SingleNodeOptions): Promise<Record<string, unknown>> {
  const home = await mkdtemp(join(tmpdir(), "custos-bench-"));
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  let node: { proc: ChildProcess; url: string } | undefined;
  try {
    // the machine's own ceiling, measured in this run: SM2 verification on one core and on all
    const ceiling = await measureVerifyCeiling();
    const r = await initHome({ home, dev: true, kdfIterations: 1000 });
    const password = (await readFile(join(home, "dev-password"), "utf8")).trim();
    if (o.auditIndex === false) {
      const cfgPath = join(home, "config.json");
      const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
      await writeFile(cfgPath, JSON.stringify({ ...cfg, audit: { ...cfg.audit, index: false } }, null, 2));
    }
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
      return signTransfersParallel({
        chainId: st.chainId,
        blockLimit: st.height + st.blockLimitWindow,
        senders,
        recipients: receivers,
        count,
      });
    };

    const sender = new RawSender(node.url);
    const watcher = new CommitWatcher(node.url);
    await watcher.open();
    const results: Phase[] = [];
    for (const p of phases) {
      log(`${p.name}: signing ${p.count} transfers`);
      const batch = await signPhase(p.count);
      // signing blocked this event loop; let the sockets' pending events (idle closes) run first
      await sleep(200);
      log(`${p.name}: sending`);
      const submitAt = new Map<string, number>();
      const accepted: string[] = [];
      let rejected = 0;
      const before = procStats(pid);
      const loaderBefore = procStats(process.pid);
      const blocksBefore = watcher.blocks.length;
      const { t0 } = await driveOpenLoop({
        count: batch.length,
        rate: p.rate,
        batch: o.batch,
        inflight: Math.max(8, Math.ceil(256 / o.batch)),
        send: async (from, to) => {
          const items = batch.slice(from, to);
          const now = performance.now();
          for (const it of items) submitAt.set(it.hash, now);
          const refused = await sender.send(items.map((it) => it.hex));
          refused.forEach((no, k) => {
            if (no) rejected++;
            else accepted.push((items[k] as SignedItem).hash);
          });
        },
      });
      // wait for the last commits (bounded)
      const deadline = performance.now() + 30_000;
      while (performance.now() < deadline && accepted.some((h) => !watcher.seen.has(h))) await sleep(50);
      const after = procStats(pid);
      const loaderAfter = procStats(process.pid);
      const lat: number[] = [];
      let lastCommit = t0;
      for (const h of accepted) {
        const c = watcher.seen.get(h);
        if (c !== undefined) {
          lat.push(c - (submitAt.get(h) as number));
          lastCommit = Math.max(lastCommit, c);
        }
      }
      const elapsed = Math.max(0.001, (lastCommit - t0) / 1000);
      const bt = watcher.blockTimes.slice(blocksBefore);
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
        latencyMs: latencySummary(lat),
        blocks: bt.length,
        blockIntervalMs: intervals(bt).median,
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
      machine: machine(),
      auditIndex: o.auditIndex !== false,
      workload: `e-CNY transfers of 1 fen from ${senders.length} tier-1 members, signed before the run, ${o.batch === 1 ? "one JSON-RPC request each" : `${o.batch} per JSON-RPC batch request`}, up to 256 in flight; latency = submit to commit notification (WebSocket)`,
      ceiling: { sm2VerifyPerCore: ceiling.verifyPerCore, sm2VerifyPool: ceiling.verifyPool },
      refusals: refusalsOf([sender]),
      method: `each phase run ${o.runs} times (interleaved); the run with the median TPS is shown, with every run's TPS`,
      phases: summary,
    };
    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const lines = [
        `single-node benchmark on ${report.machine.cpus} x ${report.machine.model}, Node ${report.machine.node}; audit index ${o.auditIndex === false ? "off" : "on"}`,
        report.workload,
        report.method,
        `ceiling (same run): SM2 verify ${ceiling.verifyPerCore}/s on one core, ${ceiling.verifyPool}/s on all cores`,
        "",
        ...table(
          [
            "phase",
            "submitted",
            "committed",
            "rejected",
            "TPS",
            "p50",
            "p95",
            "p99",
            "blocks",
            "interval",
            "cpu%",
            "rss",
            "load%",
            "   runs (TPS)",
          ],
          summary.map((r) => [
            r.name,
            r.submitted,
            r.committed,
            r.rejected,
            r.successTps,
            r.latencyMs.p50,
            r.latencyMs.p95,
            r.latencyMs.p99,
            r.blocks,
            r.blockIntervalMs,
            r.nodeCpuPercent,
            r.nodeRssMiB,
            r.loaderCpuPercent,
            `   ${r.runsTps.join(" ")}`,
          ]),
          [16, 10, 10, 9, 7, 7, 7, 7, 8, 9, 6, 6, 7, 0],
        ),
        `refused at admission, all phases: ${JSON.stringify(report.refusals)}`,
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
