import { access, mkdtemp, readFile, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { DEV_MEMBERS } from "@custos/node";
import { down, freeBasePort, readTestnet, type TestnetFile, up } from "@custos/testnet";
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
  signCallsParallel,
  signTransfersParallel,
  sleep,
  table,
} from "./load.js";
import {
  measurePrepaidCeiling,
  type PrepaidWorkload,
  prepaidCalls,
  setUpPrepaidWorkload,
} from "./prepaid.js";
import { median } from "./stats.js";

export type WorkloadName = "transfer" | "prepaid";

export interface TestnetBenchOptions {
  runs: number;
  ms: number;
  json: boolean;
  rates: number[];
  seconds: number;
  /** Transactions per JSON-RPC request (a batch); 1 = one request per transaction. */
  batch: number;
  /** Validator processes. */
  nodes: number;
  /** Genesis maxBlockTxs (the testnet default, 5000, when absent). */
  maxBlockTxs?: number;
  /** Genesis minBlockIntervalMs. */
  blockIntervalMs: number;
  /** Seconds of unmeasured load before the measured phases (0: none). */
  warmup: number;
  /** Run the nodes without their audit index (config audit.index false), to measure what it costs. */
  auditIndex?: boolean;
  /** The nodes' pool.queueSeconds (admission control; the node's default, 0.75 s, when absent). */
  queueSeconds?: number;
  /** Keep the testnet directory (nodes stopped) for its logs instead of removing it. */
  keep: boolean;
  /** How the nodes secure their connections (genesis p2p.secure): "sm" (default) or "noise". */
  p2pSecure: "sm" | "noise";
  /** What the phases send: e-CNY transfers, prepaid-card purchases and consumptions, or both (interleaved). */
  workloads: WorkloadName[];
}

const BIN = fileURLToPath(new URL("../../cli/bin/custos.js", import.meta.url));
/** Transactions in flight at once per validator (requests, or batches of `batch`). */
const INFLIGHT_TXS = 256;
/** How long after the last send a phase waits for its last commits. */
const DRAIN_MS = 20_000;

interface NodeFigures {
  name: string;
  cpuSeconds: number;
  cpuPercent: number;
  rssMiB: number;
  viewChanges: number;
  /** Blocks this validator fetched by block sync instead of deciding them in consensus. */
  syncedBlocks: number;
  /** Proposed transactions its pool lacked, fetched from peers (0 on a node without the metric). */
  fetchedTxs: number;
}

interface Phase {
  name: string;
  workload: WorkloadName;
  offeredRate: number;
  signed: number;
  submitted: number;
  rejected: number;
  committed: number;
  failedReceipts: number;
  notCommitted: number;
  notSent: number;
  failed: number;
  successTps: number;
  latencyMs: { p50: number; p95: number; p99: number };
  blocks: number;
  txsPerBlock: number;
  /** Transactions in the phase's largest block (the genesis cap is the options' maxBlockTxs). */
  largestBlockTxs: number;
  blockIntervalMs: { mean: number; median: number; max: number };
  viewChanges: number;
  syncedBlocks: number;
  fetchedTxs: number;
  /** Validators' CPU per committed transaction, mean over validators. */
  cpuMsPerTx: number;
  nodes: NodeFigures[];
  loaderCpuPercent: number;
}

/** Counters and gauges of one node's GET /metrics (unlabelled series only). */
async function scrape(rpc: string): Promise<Map<string, number>> {
  const res = await fetch(`${rpc}/metrics`);
  if (!res.ok) throw new Error(`GET ${rpc}/metrics answered ${res.status}`);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)\s+(\S+)$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** One debug line: each validator's height/view/pool size. */
async function sample(validators: readonly { rpc: string }[]): Promise<void> {
  const t = performance.now();
  const parts = await Promise.all(
    validators.map(async (v) => {
      try {
        const [m, s] = await Promise.all([scrape(v.rpc), new CustosClient(v.rpc).status()]);
        const view = (s as unknown as { view?: number }).view ?? 0;
        return `${s.height}/${view}/${metric(m, "custos_txpool_size")}`;
      } catch {
        return "-";
      }
    }),
  );
  process.stderr.write(
    `  ${(t / 1000).toFixed(2)} (${Math.round(performance.now() - t)} ms): ${parts.join("  ")}\n`,
  );
}

const metric = (m: Map<string, number>, name: string) => m.get(name) ?? 0;

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Starts the testnet, picking another base port if one was taken in the meantime. */
async function startTestnet(
  dir: string,
  o: {
    nodes: number;
    blockIntervalMs: number;
    maxBlockTxs?: number;
    auditIndex?: boolean;
    queueSeconds?: number;
    p2pSecure: "sm" | "noise";
  },
): Promise<TestnetFile> {
  const nodeConfig = {
    ...(o.auditIndex === false ? { audit: { index: false } } : {}),
    ...(o.queueSeconds === undefined ? {} : { pool: { queueSeconds: o.queueSeconds } }),
  };
  // CUSTOS_BENCH_NODE_ARGS passes Node flags to the node processes only (e.g. --cpu-prof)
  const extra = (process.env.CUSTOS_BENCH_NODE_ARGS ?? "").split(" ").filter(Boolean);
  for (let attempt = 0; ; attempt++) {
    try {
      return await up({
        dir,
        nodes: o.nodes,
        observers: 0,
        basePort: await freeBasePort(o.nodes),
        command: [process.execPath, ...extra, BIN],
        blockIntervalMs: o.blockIntervalMs,
        ...(o.maxBlockTxs === undefined ? {} : { maxBlockTxs: o.maxBlockTxs }),
        ...(Object.keys(nodeConfig).length > 0 ? { nodeConfig } : {}),
        p2pSecure: o.p2pSecure,
        reuse: false,
      });
    } catch (err) {
      if ((err as { code?: string }).code !== "TESTNET_PORT_BUSY" || attempt >= 4) throw err;
    }
  }
}

export async function runTestnetBench(o: TestnetBenchOptions): Promise<Record<string, unknown>> {
  if (!Number.isInteger(o.nodes) || o.nodes > 16) throw new Error("--nodes takes 1 to 16 validators");
  if (!Number.isFinite(o.warmup) || o.warmup < 0) throw new Error("--warmup takes seconds (0: none)");
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  // the machine is shared: its load before and after the run goes into the report
  const loadBefore = loadavg().map((x) => Math.round(x * 100) / 100);
  // the machine's own ceiling, measured in this run before the nodes start
  log("measuring the SM2 verify ceiling");
  const ceiling = await measureVerifyCeiling();
  const vmCeiling = o.workloads.includes("prepaid") ? await measurePrepaidCeiling() : undefined;
  const dir = await mkdtemp(join(tmpdir(), "custos-testnet-bench-"));
  let cleaning: Promise<void> | undefined;
  const cleanup = () => {
    cleaning ??= (async () => {
      if (await exists(join(dir, "testnet.json"))) await down(dir).catch(() => {});
      if (!o.keep) await rm(dir, { recursive: true, force: true });
    })();
    return cleaning;
  };
  // the nodes are detached processes: an interrupted benchmark must still stop them
  const onSignal = (sig: NodeJS.Signals) => {
    process.stderr.write(`${sig}: stopping the testnet\n`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const watchers: CommitWatcher[] = [];
  const senders: RawSender[] = [];
  try {
    log(`starting a testnet of ${o.nodes} validators in ${dir} (connections: ${o.p2pSecure})`);
    const startedAt = performance.now();
    await startTestnet(dir, o);
    const t = await readTestnet(dir);
    const validators = t.nodes.filter((n) => n.role === "validator");
    log(
      `testnet up in ${Math.round(performance.now() - startedAt)} ms: ${validators.map((n) => n.rpc).join(" ")}`,
    );
    const password = (await readFile(t.passwordFile, "utf8")).trim();
    const client = new CustosClient(validators[0]?.rpc as string);

    // tier-1 members (limits far above the load) send to each other; the operator funds them
    const tier1 = new Set(DEV_MEMBERS.filter((m) => m.tier === 1).map((m) => m.name));
    const keyOf = (name: string) => {
      const a = t.accounts.find((x) => x.name === name);
      if (!a) throw new Error(`testnet.json has no account ${name}`);
      return loadKeystoreFile(a.keyFile, password);
    };
    const operator = await keyOf("operator");
    const members: Sm2KeyPair[] = [];
    for (const a of t.accounts.filter((a) => tier1.has(a.name) && a.role !== "operator"))
      members.push(await keyOf(a.name));
    log(`funding ${members.length} tier-1 members`);
    const opWallet = new Wallet(client, operator);
    const funded = await Promise.all(
      members.map((m, i) =>
        opWallet.send({ to: "ecny", method: "issue", args: [m.address, 10n ** 11n, `bench-fund-${i}`] }),
      ),
    );
    if (funded.some((f) => !f.receipt?.success)) throw new Error("issuing e-CNY to the senders failed");

    let prepaid: PrepaidWorkload | undefined;
    if (o.workloads.includes("prepaid"))
      prepaid = await setUpPrepaidWorkload({
        rpc: validators[0]?.rpc as string,
        accounts: t.accounts,
        password,
        keyOf,
        consumers: 9,
        cardsPerConsumer: 4,
        purchaseEvery: 5,
        log,
      });
    /** Transactions signed so far per workload: each phase's calls continue the plan. */
    const planned = new Map<WorkloadName, number>();

    for (const v of validators) {
      const w = new CommitWatcher(v.rpc);
      await w.open();
      watchers.push(w);
      senders.push(new RawSender(v.rpc));
    }
    const once = o.rates.flatMap((rate) =>
      o.workloads.map((workload) => ({
        name: `${workload} ${rate}/s`,
        workload,
        rate,
        seconds: o.seconds,
        count: Math.round(rate * o.seconds),
        warmup: false,
      })),
    );
    // the fresh processes' code paths warmed up first (not measured), at half the lowest rate
    const warmRate = Math.max(1, Math.round(Math.min(...o.rates) / 2));
    const warmup = {
      name: `warm-up ${warmRate}/s`,
      workload: o.workloads[0] as WorkloadName,
      rate: warmRate,
      seconds: o.warmup,
      count: Math.round(warmRate * o.warmup),
      warmup: true,
    };
    // every rate o.runs times, interleaved, so that drift on a shared machine hits all of them
    const phases = [...(o.warmup > 0 ? [warmup] : []), ...Array.from({ length: o.runs }, () => once).flat()];
    const results: Phase[] = [];
    for (const [k, p] of phases.entries()) {
      const label = p.warmup
        ? p.name
        : `${p.name} (${k + (o.warmup > 0 ? 0 : 1)}/${phases.length - (o.warmup > 0 ? 1 : 0)})`;
      // what an earlier phase left in the pools (an overloaded one) would be this phase's load too
      const idleBy = performance.now() + 90_000;
      while (
        (
          await Promise.all(validators.map(async (v) => metric(await scrape(v.rpc), "custos_txpool_size")))
        ).some((n) => n > 0)
      ) {
        if (performance.now() > idleBy) {
          log(`${label}: the pools still hold transactions of an earlier phase after 90 s; going on`);
          break;
        }
        await sleep(200);
      }
      // signed before the phase (outside its measured time), so that every blockLimit is fresh
      const phaseStart = performance.now();
      log(
        `${label}: signing ${p.count} ${p.workload === "prepaid" ? "purchases and consumptions" : "transfers"}`,
      );
      const st = await client.status();
      const offset = planned.get(p.workload) ?? 0;
      planned.set(p.workload, offset + p.count);
      const items =
        p.workload === "prepaid"
          ? await signCallsParallel({
              chainId: st.chainId,
              blockLimit: st.height + st.blockLimitWindow,
              senders: (prepaid as PrepaidWorkload).consumers,
              calls: prepaidCalls(prepaid as PrepaidWorkload, p.count, offset),
            })
          : await signTransfersParallel({
              chainId: st.chainId,
              blockLimit: st.height + st.blockLimitWindow,
              senders: members,
              // sender k pays sender k + 1: transfer i goes from members[i % n] to members[(i + 1) % n]
              recipients: members.map((_, k) => (members[(k + 1) % members.length] as Sm2KeyPair).address),
              count: p.count,
            });
      // signing blocked this event loop; let the sockets' pending events (idle closes) run first
      await sleep(200);
      log(`${label}: sending for ${p.seconds} s over ${validators.length} validators`);
      const submitAt = new Map<string, number>();
      const accepted: { hash: string; node: number }[] = [];
      let rejected = 0;
      const before = await Promise.all(validators.map((v) => scrape(v.rpc)));
      const loaderBefore = procStats(process.pid);
      const blocksBefore = (watchers[0] as CommitWatcher).blocks.length;
      // BENCH_DEBUG=1: every validator's height, view and pool size, 4 times a second
      const sampler = process.env.BENCH_DEBUG ? setInterval(() => void sample(validators), 250) : undefined;
      const { t0, started } = await driveOpenLoop({
        count: items.length,
        rate: p.rate,
        batch: o.batch,
        inflight: Math.max(8, Math.ceil((INFLIGHT_TXS * validators.length) / o.batch)),
        // bounded in time as well as count: a system that falls behind does not stretch the phase
        stopAfterMs: p.seconds * 1000 + 5000,
        send: async (from, to, due) => {
          const node = Math.floor(from / o.batch) % validators.length;
          const batch = items.slice(from, to);
          for (const it of batch) submitAt.set(it.hash, due);
          const refused = await (senders[node] as RawSender).send(batch.map((it) => it.hex));
          refused.forEach((no, j) => {
            if (no) rejected++;
            else accepted.push({ hash: (batch[j] as SignedItem).hash, node });
          });
        },
      });
      // latency: from submission to the commit notification of the validator it was sent to
      const committedAt = (a: { hash: string; node: number }) => watchers[a.node]?.seen.get(a.hash);
      const deadline = performance.now() + DRAIN_MS;
      while (performance.now() < deadline && accepted.some((a) => committedAt(a) === undefined))
        await sleep(50);
      clearInterval(sampler);
      const after = await Promise.all(validators.map((v) => scrape(v.rpc)));
      const loaderAfter = procStats(process.pid);
      const lat: number[] = [];
      let lastCommit = t0;
      for (const a of accepted) {
        const c = committedAt(a);
        if (c === undefined) continue;
        lat.push(c - (submitAt.get(a.hash) as number));
        lastCommit = Math.max(lastCommit, c);
      }
      const elapsed = Math.max(0.001, (lastCommit - t0) / 1000);
      // every validator commits the same blocks: receipts that failed, counted by validator 0
      const delta = (i: number, name: string) =>
        metric(after[i] as Map<string, number>, name) - metric(before[i] as Map<string, number>, name);
      const failedReceipts = delta(0, "custos_txs_failed_total");
      const nodes: NodeFigures[] = validators.map((v, i) => {
        const cpu = delta(i, "process_cpu_seconds_total");
        return {
          name: v.name,
          cpuSeconds: Math.round(cpu * 100) / 100,
          cpuPercent: Math.round((cpu / elapsed) * 100),
          rssMiB: Math.round(
            metric(after[i] as Map<string, number>, "process_resident_memory_bytes") / 2 ** 20,
          ),
          viewChanges: delta(i, "custos_consensus_view_changes_total"),
          syncedBlocks: delta(i, "custos_sync_blocks_total"),
          fetchedTxs: delta(i, "custos_consensus_fetched_txs_total"),
        };
      });
      // block interval from the proposers' header timestamps of the blocks this phase made
      const blocks = (watchers[0] as CommitWatcher).blocks.slice(blocksBefore);
      const committed = lat.length;
      const notCommitted = accepted.length - committed;
      const successful = committed - failedReceipts;
      const r: Phase = {
        name: p.name,
        workload: p.workload,
        offeredRate: p.rate,
        signed: items.length,
        submitted: started,
        rejected,
        committed,
        failedReceipts,
        notCommitted,
        notSent: items.length - started,
        failed: rejected + failedReceipts + notCommitted + (items.length - started),
        successTps: Math.round(successful / elapsed),
        latencyMs: latencySummary(lat),
        blocks: blocks.length,
        txsPerBlock: blocks.length ? Math.round(committed / blocks.length) : 0,
        largestBlockTxs: blocks.reduce((m, b) => Math.max(m, b.txs), 0),
        blockIntervalMs: intervals(blocks.map((b) => b.timestamp)),
        viewChanges: nodes.reduce((s, n) => s + n.viewChanges, 0),
        syncedBlocks: nodes.reduce((s, n) => s + n.syncedBlocks, 0),
        fetchedTxs: nodes.reduce((s, n) => s + n.fetchedTxs, 0),
        cpuMsPerTx:
          committed > 0
            ? Math.round(
                (nodes.reduce((s, n) => s + n.cpuSeconds, 0) * 1000 * 100) / nodes.length / committed,
              ) / 100
            : 0,
        nodes,
        loaderCpuPercent: Math.round(((loaderAfter.cpuSeconds - loaderBefore.cpuSeconds) / elapsed) * 100),
      };
      if (!p.warmup) results.push(r);
      log(
        `${label}: ${r.successTps} TPS, p50/p95/p99 ${r.latencyMs.p50}/${r.latencyMs.p95}/${r.latencyMs.p99} ms, ${r.blocks} blocks (largest ${r.largestBlockTxs} txs, longest interval ${r.blockIntervalMs.max} ms), ${r.failed} failed, ${r.viewChanges} view changes (phase took ${((performance.now() - phaseStart) / 1000).toFixed(1)} s)`,
      );
    }
    const heights = await Promise.all(
      validators.map((v) =>
        new CustosClient(v.rpc)
          .status()
          .then((s) => s.height)
          .catch(() => -1),
      ),
    );
    // per workload and rate: the run with the median TPS, every run's TPS and p99, min/median/max
    const summary = once.map((p) => {
      const runs = results.filter((r) => r.name === p.name);
      const mid = [...runs].sort((a, b) => a.successTps - b.successTps)[
        Math.floor((runs.length - 1) / 2)
      ] as Phase;
      const spread = (f: (r: Phase) => number) => {
        const v = runs.map(f);
        return { min: Math.min(...v), median: Math.round(median(v)), max: Math.max(...v) };
      };
      return {
        ...mid,
        runsTps: runs.map((r) => r.successTps),
        runsP99: runs.map((r) => r.latencyMs.p99),
        tps: spread((r) => r.successTps),
        p99: spread((r) => r.latencyMs.p99),
      };
    });
    // the prepaid workload against the transfers of the same run, rate by rate
    const ratios = o.rates.flatMap((rate) => {
      const tr = summary.find((r) => r.workload === "transfer" && r.offeredRate === rate);
      const pp = summary.find((r) => r.workload === "prepaid" && r.offeredRate === rate);
      return tr && pp
        ? [
            {
              rate,
              transferTps: tr.tps.median,
              prepaidTps: pp.tps.median,
              ratio: Math.round((pp.tps.median / Math.max(1, tr.tps.median)) * 100) / 100,
            },
          ]
        : [];
    });
    const ceilingTps = Math.round(ceiling.verifyPool / validators.length);
    const report = {
      benchmark: "testnet",
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: { before: loadBefore, after: loadavg().map((x) => Math.round(x * 100) / 100) },
      testnet: {
        validators: validators.length,
        processes: "one `custos node start` per validator, libp2p on 127.0.0.1, PBFT",
        p2pSecure: o.p2pSecure,
        minBlockIntervalMs: o.blockIntervalMs,
        maxBlockTxs: o.maxBlockTxs ?? 5000,
        auditIndex: o.auditIndex !== false,
        ...(o.queueSeconds === undefined ? {} : { queueSeconds: o.queueSeconds }),
        finalHeights: heights,
      },
      workload: `${[
        ...(o.workloads.includes("transfer")
          ? [`transfer: e-CNY transfers of 1 fen among ${members.length} tier-1 members`]
          : []),
        ...(prepaid ? [`prepaid: ${prepaid.describe}`] : []),
      ].join(
        "; ",
      )}; signed before each phase, sent open loop at a fixed rate for ${o.seconds} s, round-robin over the ${validators.length} validators' RPC, ${o.batch === 1 ? "one JSON-RPC request each" : `${o.batch} per JSON-RPC batch request`}, up to ${INFLIGHT_TXS} txs in flight per validator; latency = from the scheduled send time to the commit notification (WebSocket newBlocks) of the validator the tx was sent to`,
      ceiling: {
        sm2VerifyPerCore: ceiling.verifyPerCore,
        sm2VerifyPool: ceiling.verifyPool,
        threads: ceiling.threads,
        // every validator verifies every transaction once, all of them on this machine's cores
        tpsBound: ceilingTps,
        ...(vmCeiling
          ? {
              prepaidVm: {
                ...vmCeiling,
                // the phases' mix: 1 buy in every purchaseEvery transactions
                tpsBound: Math.round(
                  (ceiling.threads * mixRate(vmCeiling, prepaid?.purchaseEvery ?? 5)) / validators.length,
                ),
              },
            }
          : {}),
      },
      refusals: refusalsOf(senders),
      method: `${o.warmup > 0 ? `after ${o.warmup} s of unmeasured warm-up at ${warmRate}/s, ` : ""}each rate run ${o.runs} times (interleaved); the run with the median TPS is shown, with every run's TPS and p99`,
      phases: summary,
      ratios,
    };
    if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else {
      const names = validators.map((v) => v.name.replace("validator-", "v"));
      const lines = [
        `testnet benchmark: ${validators.length} validator processes on ${report.machine.cpus} x ${report.machine.model}, Node ${report.machine.node}; audit index ${o.auditIndex === false ? "off" : "on"}${o.queueSeconds === undefined ? "" : `; pool.queueSeconds ${o.queueSeconds}`}; connections secured with ${o.p2pSecure === "sm" ? "national algorithms (sm-secure)" : "noise"}`,
        report.workload,
        report.method,
        `ceiling (same run): SM2 verify ${ceiling.verifyPerCore}/s on one core, ${ceiling.verifyPool}/s with the verifier pool on ${ceiling.threads} threads; each of ${validators.length} validators verifies every tx: at most ${ceilingTps} TPS`,
        ...(vmCeiling
          ? [
              `prepaid VM ceiling (same run): consume ${vmCeiling.consumePerCore}/s and buy ${vmCeiling.buyPerCore}/s on one core; each of ${validators.length} validators executes every tx: the mix at most ${report.ceiling.prepaidVm?.tpsBound} TPS on ${ceiling.threads} cores`,
            ]
          : []),
        "",
        ...table(
          [
            "rate",
            "TPS",
            "failed",
            "p50",
            "p95",
            "p99",
            "blocks",
            "tx/blk",
            "blk max",
            "ivl mean",
            "ivl med",
            "ivl max",
            "VCs",
            "synced",
            "fetched",
            "cpu ms/tx",
            "load%",
            "TPS min/med/max",
            "   runs (TPS / p99)",
          ],
          summary.map((r) => [
            r.name,
            r.successTps,
            r.failed,
            r.latencyMs.p50,
            r.latencyMs.p95,
            r.latencyMs.p99,
            r.blocks,
            r.txsPerBlock,
            r.largestBlockTxs,
            r.blockIntervalMs.mean,
            r.blockIntervalMs.median,
            r.blockIntervalMs.max,
            r.viewChanges,
            r.syncedBlocks,
            r.fetchedTxs,
            r.cpuMsPerTx,
            r.loaderCpuPercent,
            `${r.tps.min}/${r.tps.median}/${r.tps.max}`,
            `   ${r.runsTps.map((x, i) => `${x}/${r.runsP99[i]}`).join(" ")}`,
          ]),
          [20, 7, 8, 7, 7, 7, 8, 8, 8, 10, 9, 9, 5, 8, 9, 11, 7, 17, 0],
        ),
        "",
        "per node, in the run shown: CPU seconds (% of one core) / RSS MiB",
        ...table(
          ["rate", ...names.map((n) => `  ${n}`), "  all nodes"],
          summary.map((r) => [
            r.name,
            ...r.nodes.map((n) => `  ${n.cpuSeconds}s (${n.cpuPercent}%) / ${n.rssMiB}`),
            `  ${r.nodes.reduce((a, n) => a + n.cpuPercent, 0)}%`,
          ]),
          [20, ...names.map(() => 26), 13],
        ),
        ...ratios.map(
          (x) =>
            `prepaid / transfer at ${x.rate}/s (median TPS of the same run): ${x.prepaidTps} / ${x.transferTps} = ${x.ratio}`,
        ),
        "",
        `failed = refused at admission + committed with a failed receipt + not committed within ${DRAIN_MS / 1000} s + not sent within ${o.seconds + 5} s:`,
        ...summary.map(
          (r) =>
            `  ${r.name}: ${r.rejected} refused, ${r.failedReceipts} failed receipts, ${r.notCommitted} not committed, ${r.notSent} not sent`,
        ),
        `refused at admission, all phases: ${JSON.stringify(report.refusals)}; final heights: ${heights.join(" ")}`,
        `load average (1, 5, 15 min) before the run ${report.loadAverage.before.join(" ")}, after ${report.loadAverage.after.join(" ")}`,
        "latency and block interval (ivl, from header timestamps) in ms; blk max: the largest block, ivl max: the longest interval; VCs: view changes summed over validators; synced: blocks validators fetched by block sync; fetched: proposed txs validators' pools lacked (summed); cpu ms/tx: a validator's CPU per committed tx (mean); load%: this load generator's CPU (it shares the machine)",
      ];
      process.stdout.write(`${lines.join("\n")}\n`);
    }
    return report;
  } finally {
    for (const w of watchers) w.close();
    for (const s of senders) s.close();
    await cleanup();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    if (o.keep) log(`kept ${dir} (nodes stopped): logs in each validator's home`);
  }
}

/** Calls per second of the prepaid mix on one core: 1 buy in every `every`, the rest consumptions. */
function mixRate(c: { consumePerCore: number; buyPerCore: number }, every: number): number {
  return 1 / ((every - 1) / every / c.consumePerCore + 1 / every / c.buyPerCore);
}
