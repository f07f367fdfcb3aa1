// `npm run bench -- <name> [--json] [--runs N] [--ms N] ...`; `npm run bench:crypto`.
import { runAuditIndexBench } from "./auditIndex.js";
import { runAuditVerifyBench } from "./auditVerify.js";
import { runConsensusBench } from "./consensus.js";
import { runCryptoBench } from "./crypto.js";
import { runHotPathBench } from "./hotPath.js";
import { runProfileSummary } from "./profile.js";
import { runSingleNodeBench } from "./singleNode.js";
import { runSoak } from "./soak.js";
import { runSyncBench } from "./sync.js";
import { runTestnetBench, type WorkloadName } from "./testnet.js";
import { runVmBench } from "./vm.js";

type Opts = { runs: number; ms: number; json: boolean; args: string[] };

function list(args: string[], name: string, fallback: number[]): number[] {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const v = String(args[i + 1])
    .split(",")
    .map(Number);
  if (v.some((n) => !Number.isFinite(n) || n <= 0))
    throw new Error(`${name} takes positive numbers, comma-separated`);
  return v;
}

const BENCHMARKS: Record<string, (o: Opts) => Promise<unknown>> = {
  profile: (o) => {
    const p = o.args.indexOf("--perf");
    if (p >= 0 && o.args[p + 1]) return runProfileSummary({ perf: String(o.args[p + 1]), json: o.json });
    const i = o.args.indexOf("--dir");
    if (i < 0 || !o.args[i + 1])
      throw new Error(
        "profile needs --dir DIR (where the .cpuprofile files are) or --perf FILE (perf script output)",
      );
    return runProfileSummary({ dir: String(o.args[i + 1]), json: o.json });
  },
  crypto: runCryptoBench,
  "hot-path": runHotPathBench,
  consensus: (o) => runConsensusBench({ ...o, runs: flag(o.args, "--runs", 3) }),
  "single-node": (o) =>
    runSingleNodeBench({
      ...o,
      runs: flag(o.args, "--runs", 3),
      rates: list(o.args, "--rates", [1000, 2000, 2500]),
      seconds: flag(o.args, "--seconds", 10),
      batch: flag(o.args, "--batch", 1),
      auditIndex: !o.args.includes("--no-audit-index"),
    }),
  testnet: (o) =>
    runTestnetBench({
      ...o,
      runs: flag(o.args, "--runs", 3),
      rates: list(o.args, "--rates", [1000, 1500]),
      seconds: flag(o.args, "--seconds", 10),
      batch: flag(o.args, "--batch", 1),
      nodes: flag(o.args, "--nodes", 4),
      blockIntervalMs: flag(o.args, "--block-interval", 100),
      ...(o.args.includes("--max-block-txs") ? { maxBlockTxs: flag(o.args, "--max-block-txs", 5000) } : {}),
      // fresh node processes: after 2 s, the first measured phase had 2-3x the latency of the ones
      // after it; after 8 s, on four validators, it no longer stood out
      warmup: o.args.includes("--warmup") ? Number(o.args[o.args.indexOf("--warmup") + 1]) : 8,
      keep: o.args.includes("--keep"),
      auditIndex: !o.args.includes("--no-audit-index"),
      ...(o.args.includes("--queue-seconds") ? { queueSeconds: flag(o.args, "--queue-seconds", 1) } : {}),
      p2pSecure: secureFlag(o.args),
      workloads: workloads(o.args),
    }),
  vm: (o) =>
    runVmBench({ ...o, runs: flag(o.args, "--runs", 5), blockTxs: flag(o.args, "--block-txs", 2000) }),
  "audit-index": (o) =>
    runAuditIndexBench({
      json: o.json,
      runs: flag(o.args, "--runs", 5),
      blocks: flag(o.args, "--blocks", 40),
      txsPerBlock: flag(o.args, "--txs-per-block", 500),
    }),
  "audit-verify": (o) =>
    runAuditVerifyBench({
      json: o.json,
      runs: flag(o.args, "--runs", 5),
      entries: flag(o.args, "--entries", 10_000),
      txsPerBlock: flag(o.args, "--txs-per-block", 500),
      validators: flag(o.args, "--validators", 4),
    }),
  soak: (o) =>
    runSoak({
      json: o.json,
      minutes: flag(o.args, "--minutes", 30),
      rate: flag(o.args, "--rate", 50),
      sampleSeconds: flag(o.args, "--sample", 30),
      faultEverySeconds: flag(o.args, "--fault-every", 60),
      keep: o.args.includes("--keep"),
    }),
  sync: (o) =>
    runSyncBench({
      json: o.json,
      blocks: flag(o.args, "--blocks", 10_000),
      txsPerBlock: flag(o.args, "--txs-per-block", 5),
      runs: flag(o.args, "--runs", 5),
      snapshot: !o.args.includes("--no-snapshot"),
    }),
};

/** --p2p-secure sm|noise: how the testnet's nodes secure their connections (sm by default). */
function secureFlag(args: string[]): "sm" | "noise" {
  const i = args.indexOf("--p2p-secure");
  const v = i >= 0 ? args[i + 1] : "sm";
  if (v !== "sm" && v !== "noise") throw new Error("--p2p-secure takes sm or noise");
  return v;
}

/** --workload transfer|prepaid|transfer,prepaid (default transfer). */
function workloads(args: string[]): WorkloadName[] {
  const i = args.indexOf("--workload");
  if (i < 0) return ["transfer"];
  const v = String(args[i + 1]).split(",");
  if (v.length === 0 || v.some((w) => w !== "transfer" && w !== "prepaid"))
    throw new Error("--workload takes transfer, prepaid or transfer,prepaid");
  return [...new Set(v)] as WorkloadName[];
}

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const name = args[0];
  const run = name ? BENCHMARKS[name] : undefined;
  if (!run) {
    console.error(
      `usage: npm run bench -- <${Object.keys(BENCHMARKS).join("|")}> [--json] [--runs N] [--ms N] [--rates R1,R2] [--seconds S] [--batch N] [--nodes N] [--block-interval MS] [--max-block-txs N] [--warmup S] [--keep] [--workload transfer,prepaid] [--p2p-secure sm|noise] [--blocks N] [--txs-per-block K] [--block-txs N] [--entries N] [--validators N] [--no-audit-index] [--queue-seconds S] [--minutes M] [--rate TPS] [--sample S] [--fault-every S] [--no-snapshot] [--dir DIR] [--perf FILE]`,
    );
    process.exitCode = 2;
    return;
  }
  await run({
    runs: flag(args, "--runs", 5),
    ms: flag(args, "--ms", 1000),
    json: args.includes("--json"),
    args,
  });
}

main().catch((err) => {
  console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
