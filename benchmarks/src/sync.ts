import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { Executor, homePaths, openChainLedger } from "@custos/node";
import * as testnet from "@custos/testnet";
import { parseGenesis, type SignedTx } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { commitCertified, ecnyTx } from "./chain.js";
import { type Ceiling, machine, measureVerifyCeiling, procStats, sleep } from "./load.js";
import { median } from "./stats.js";

export interface SyncBenchOptions {
  json: boolean;
  blocks: number;
  txsPerBlock: number;
  /** Each way of joining is measured this many times on the same chain. */
  runs: number;
  /** Also measure joining from a state snapshot the validators took at the chain's head. */
  snapshot: boolean;
}

const CLI = [process.execPath, fileURLToPath(new URL("../../cli/bin/custos.js", import.meta.url))];

/**
 * Writes `blocks` blocks of e-CNY transfers into validator-0's ledger, each executed by the
 * same code a proposer uses and certified by the Commit signatures of validators 0-2 over its
 * hash (what consensus would have produced, without waiting for it), and copies that ledger to
 * the other validators.
 */
async function generateChain(t: testnet.TestnetFile, password: string, o: SyncBenchOptions): Promise<number> {
  const v = t.nodes.filter((n) => n.role === "validator");
  const genesis = parseGenesis(
    JSON.parse(await readFile(join(v[0]?.home as string, "genesis.json"), "utf8")),
  );
  const validatorKeys: Sm2KeyPair[] = [];
  for (const n of v.slice(0, 3))
    validatorKeys.push(await loadKeystoreFile(join(n.home, "keys", "node.json"), password));
  const tier1 = t.accounts.filter((a) =>
    ["operator", "committee", "institution", "merchant"].includes(a.role),
  );
  const senders: Sm2KeyPair[] = [];
  for (const a of tier1) senders.push(await loadKeystoreFile(a.keyFile, password));
  const operator = senders[0] as Sm2KeyPair;
  const ledger = await openChainLedger(homePaths(v[0]?.home as string).ledger, genesis, nullLogger);
  const executor = new Executor(genesis, nullLogger);
  const tx = (key: Sm2KeyPair, height: number, method: string, args: unknown[]): SignedTx =>
    ecnyTx(genesis.chainId, key, new Uint8Array(randomBytes(16)), height + 10, method, args);
  let txCount = 0;
  try {
    for (let h = 1; h <= o.blocks; h++) {
      const txs =
        h === 1
          ? senders.map((s, i) => tx(operator, h, "issue", [s.address, 10n ** 12n, `bench-${i}`]))
          : Array.from({ length: o.txsPerBlock }, (_, k) => {
              const i = (h * o.txsPerBlock + k) % senders.length;
              const to = senders[(i + 1) % senders.length] as Sm2KeyPair;
              return tx(senders[i] as Sm2KeyPair, h, "transfer", [to.address, 1n]);
            });
      await commitCertified({
        genesis,
        ledger,
        executor,
        signers: validatorKeys,
        txs,
        proposer: h % v.length,
        timestampStep: 10,
      });
      txCount += txs.length;
    }
  } finally {
    await ledger.close();
  }
  for (const n of v.slice(1)) {
    await rm(homePaths(n.home).ledger, { recursive: true, force: true });
    await cp(homePaths(v[0]?.home as string).ledger, homePaths(n.home).ledger, { recursive: true });
  }
  return txCount;
}

/** The last `"msg"` line of a node's log with `blocks > 0` (or any, for the snapshot line). */
async function lastLogLine(home: string, msg: string): Promise<Record<string, unknown> | undefined> {
  const lines = (await readFile(join(home, "logs", "node.log"), "utf8")).split("\n");
  for (const l of lines.reverse()) {
    if (!l.includes(`"${msg}"`)) continue;
    const j = JSON.parse(l) as Record<string, unknown>;
    if (msg !== "block sync finished" || Number(j.blocks) > 0) return j;
  }
  return undefined;
}

interface Join {
  /** The node's own figure: sync ("block sync finished") or snapshot join ("ledger started from a snapshot"). */
  seconds: number;
  /** From the process's start to its RPC reporting the chain's height. */
  wallSeconds: number;
  cpuSeconds: number;
  rssMiB: number;
}

/**
 * The observer loses its disk and starts again, replaying from genesis or from a snapshot;
 * returns when its RPC reports `height`.
 */
async function joinOnce(
  dir: string,
  home: string,
  height: number,
  how: "replay" | "snapshot",
): Promise<Join> {
  // its disk is deleted next: how it stops does not matter
  await testnet.kill(dir, 4).catch(() => {});
  await rm(join(home, "data"), { recursive: true, force: true });
  const cfgPath = join(home, "config.json");
  const cfg = JSON.parse(await readFile(cfgPath, "utf8")) as Record<string, unknown>;
  await writeFile(cfgPath, JSON.stringify({ ...cfg, snapshots: { join: how === "snapshot" } }, null, 2));
  await rm(join(home, "logs", "node.log"), { force: true });
  const t0 = performance.now();
  const observer = await testnet.restart(dir, 4, 15 * 60_000);
  const client = new CustosClient(observer.rpc, { timeoutMs: 15_000 });
  const deadline = Date.now() + 15 * 60_000;
  // a node busy replaying may answer slowly: a status that times out is asked again
  const heightNow = () =>
    client.status().then(
      (st) => st.height,
      () => -1,
    );
  while ((await heightNow()) < height) {
    if (Date.now() > deadline)
      throw new Error(`the observer did not reach ${height} within 15 minutes (${how})`);
    await sleep(50);
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const proc = procStats(observer.pid);
  const line = await lastLogLine(
    home,
    how === "replay" ? "block sync finished" : "ledger started from a snapshot",
  );
  if (how === "snapshot" && !line) throw new Error("the observer did not start from a snapshot");
  return {
    seconds: Number(line?.seconds ?? wallSeconds),
    wallSeconds,
    cpuSeconds: proc.cpuSeconds,
    rssMiB: Math.round(proc.rssBytes / 2 ** 20),
  };
}

const spread = (xs: number[], digits = 2) => {
  const r = (x: number) => Number(x.toFixed(digits));
  return { min: r(Math.min(...xs)), median: r(median(xs)), max: r(Math.max(...xs)), runs: xs.map(r) };
};

/**
 * `npm run bench -- sync [--blocks N] [--txs-per-block K] [--runs R] [--no-snapshot]`: an
 * observer that has lost its disk joins a chain of N blocks served by 4 validator processes, R
 * times by replaying from genesis and R times from a state snapshot the validators took at the
 * head; reports both (the node's own figure and the wall time from process start, min/median/max)
 * beside the machine's SM2 verify ceiling measured in the same run, and checks after each
 * snapshot join that the observer's balances are the validators'.
 */
export async function runSyncBench(o: SyncBenchOptions): Promise<unknown> {
  const ceiling: Ceiling = await measureVerifyCeiling();
  const dir = await mkdtemp(join(tmpdir(), "custos-sync-bench-"));
  try {
    const t = await testnet.up({
      dir,
      nodes: 4,
      observers: 1,
      basePort: await testnet.freeBasePort(5, 40_000, 15_000),
      command: CLI,
    });
    await testnet.down(dir);
    const password = (await readFile(t.passwordFile, "utf8")).trim();
    const g0 = performance.now();
    const txs = await generateChain(t, password, o);
    const generateSeconds = (performance.now() - g0) / 1000;
    const observerHome = t.nodes[4]?.home as string;
    await rm(homePaths(observerHome).ledger, { recursive: true, force: true });
    if (o.snapshot)
      for (const n of t.nodes.slice(0, 4)) {
        const r = spawnSync(
          CLI[0] as string,
          [CLI[1] as string, "snapshot", "create", "--home", n.home, "--json"],
          {
            encoding: "utf8",
            env: { ...process.env, CUSTOS_PASSWORD: password },
          },
        );
        if (r.status !== 0) throw new Error(`snapshot create on ${n.name}: ${r.stderr}`);
      }
    for (let i = 0; i < 4; i++) await testnet.restart(dir, i);
    const replays: Join[] = [];
    const joins: Join[] = [];
    let snapshotInfo: Record<string, unknown> | undefined;
    const v0 = new CustosClient(t.nodes[0]?.rpc as string, { timeoutMs: 10_000 });
    const accounts = t.accounts.map((a) => a.address);
    for (let run = 0; run < o.runs; run++) {
      replays.push(await joinOnce(dir, observerHome, o.blocks, "replay"));
      if (!o.snapshot) continue;
      joins.push(await joinOnce(dir, observerHome, o.blocks, "snapshot"));
      snapshotInfo = await lastLogLine(observerHome, "ledger started from a snapshot");
      // the same state as the others: every account's balance at the same height
      const obs = new CustosClient(t.nodes[4]?.rpc as string, { timeoutMs: 10_000 });
      for (const a of accounts) {
        const [x, y] = await Promise.all([v0.ecnyBalance(a), obs.ecnyBalance(a)]);
        if (x.balance !== y.balance)
          throw new Error(`balance of ${a}: validator-0 ${x.balance}, observer ${y.balance}`);
      }
    }
    const perBlockVerifies = 3 + o.txsPerBlock;
    const replay = spread(replays.map((r) => r.seconds));
    const snap = o.snapshot ? spread(joins.map((r) => r.seconds)) : undefined;
    const result = {
      benchmark: "sync",
      machine: machine(),
      blocks: o.blocks,
      txs,
      runs: o.runs,
      generateSeconds: Number(generateSeconds.toFixed(1)),
      replay: {
        seconds: replay,
        wallSecondsFromProcessStart: spread(replays.map((r) => r.wallSeconds)),
        txPerSecond: spread(
          replays.map((r) => txs / r.seconds),
          0,
        ),
        cpuSeconds: spread(
          replays.map((r) => r.cpuSeconds),
          1,
        ),
        rssMiB: spread(
          replays.map((r) => r.rssMiB),
          0,
        ),
      },
      ...(snap
        ? {
            snapshot: {
              seconds: snap,
              wallSecondsFromProcessStart: spread(joins.map((r) => r.wallSeconds)),
              cpuSeconds: spread(
                joins.map((r) => r.cpuSeconds),
                1,
              ),
              rssMiB: spread(
                joins.map((r) => r.rssMiB),
                0,
              ),
              last: snapshotInfo,
              balancesCompared: accounts.length,
            },
            speedup: {
              node: Number((replay.median / snap.median).toFixed(1)),
              fromProcessStart: Number(
                (median(replays.map((r) => r.wallSeconds)) / median(joins.map((r) => r.wallSeconds))).toFixed(
                  1,
                ),
              ),
            },
          }
        : {}),
      ceiling: {
        ...ceiling,
        /** Blocks/s if SM2 verification on all cores were the only cost. */
        blocksPerSecondIfOnlyVerifying: Math.round(ceiling.verifyPool / perBlockVerifies),
      },
    };
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      const f = (s: { min: number; median: number; max: number }, unit = " s") =>
        `${s.min} / ${s.median} / ${s.max}${unit}`;
      console.log(
        `sync: an observer that lost its disk joins ${o.blocks} blocks (${txs} txs) served by 4 validator processes, ${o.runs} runs each (min / median / max)`,
      );
      console.log(`  generated the chain in ${result.generateSeconds} s (not part of the figure)`);
      console.log(
        `  replay from genesis: ${f(result.replay.seconds)} (node's figure), ${f(result.replay.wallSecondsFromProcessStart)} from process start, ${f(result.replay.txPerSecond, " tx/s")}`,
      );
      if (result.snapshot && result.speedup) {
        console.log(
          `  from a snapshot:     ${f(result.snapshot.seconds)} (node's figure), ${f(result.snapshot.wallSecondsFromProcessStart)} from process start; balances of ${accounts.length} accounts equal to validator-0's`,
        );
        console.log(
          `  speedup (medians): ${result.speedup.node}x (node's figures), ${result.speedup.fromProcessStart}x (from process start)`,
        );
      }
      console.log(
        `  ceiling: SM2 verify ${ceiling.verifyPerCore}/s per core, ${ceiling.verifyPool}/s on ${ceiling.threads} threads -> ${result.ceiling.blocksPerSecondIfOnlyVerifying} blocks/s at ${perBlockVerifies} verifies per block`,
      );
    }
    return result;
  } finally {
    await testnet.down(dir).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
