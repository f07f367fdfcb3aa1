import { readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import {
  down,
  freeBasePort,
  heal,
  kill,
  partition,
  restart,
  setLinks,
  type TestnetFile,
  up,
} from "@custos/testnet";
import { latencySummary, procStats, sleep, table } from "./load.js";

/**
 * Soak (issue 17): `npm run bench -- soak --minutes N [--rate TPS] [--sample S] [--fault-every S]`.
 * A 4-validator testnet with the link proxy, a steady load of e-CNY transfers sent through every
 * validator in turn, and a fault every `--fault-every` seconds (kill -9 of a validator and its
 * restart, a lossy link, a validator partitioned away), each held 10 s. Every `--sample` seconds it
 * reports each validator's RSS and V8 heap, the submit-to-commit latency of that interval, and the
 * ledger's bytes on disk per committed transaction, so that growth over time shows.
 */
export interface SoakOptions {
  minutes: number;
  rate: number;
  sampleSeconds: number;
  faultEverySeconds: number;
  json: boolean;
  keep: boolean;
}

interface Sample {
  atSeconds: number;
  height: number;
  committed: number;
  failed: number;
  latencyMs: { p50: number; p95: number; p99: number };
  rssMiB: number[];
  heapMiB: number[];
  diskMiB: number;
  diskBytesPerTx: number;
  fault: string;
}

const BIN = fileURLToPath(new URL("../../cli/bin/custos.js", import.meta.url));

function dirBytes(path: string, depth = 0): number {
  let total = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(path);
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(path, e);
    try {
      const s = statSync(p);
      total += s.isDirectory() && depth < 6 ? dirBytes(p, depth + 1) : s.size;
    } catch {
      // removed meanwhile (LevelDB compaction)
    }
  }
  return total;
}

async function heapOf(rpc: string): Promise<number> {
  try {
    const text = await (await fetch(`${rpc}/metrics`, { signal: AbortSignal.timeout(3000) })).text();
    return Number(/^nodejs_heap_used_bytes (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
  } catch {
    return Number.NaN;
  }
}

export async function runSoak(o: SoakOptions): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), "custos-soak-"));
  const t: TestnetFile = await up({
    dir,
    nodes: 4,
    observers: 0,
    basePort: await freeBasePort(4, 20_000, 10_000, true),
    command: [process.execPath, BIN],
    blockIntervalMs: 100,
    faults: true,
    timeoutMs: 120_000,
  });
  const out = (line: string) => {
    if (!o.json) process.stdout.write(`${line}\n`);
  };
  try {
    const password = readFileSync(t.passwordFile, "utf8").trim();
    const key = async (name: string): Promise<Sm2KeyPair> =>
      loadKeystoreFile(t.accounts.find((a) => a.name === name)?.keyFile as string, password);
    const clients = t.nodes.map((n) => new CustosClient(n.rpc, { timeoutMs: 10_000 }));
    const operator = await key("operator");
    const payers = await Promise.all(["consumer-1", "consumer-2", "consumer-3"].map(key));
    const merchant = (await key("merchant-1")).address;
    for (const [k, p] of payers.entries())
      await new Wallet(clients[0] as CustosClient, operator).send({
        to: "ecny",
        method: "issue",
        args: [p.address, 100_000_000n, `soak-${k}`],
      });

    const started = Date.now();
    const endAt = started + o.minutes * 60_000;
    let latencies: number[] = [];
    let committed = 0;
    let failed = 0;
    let stop = false;
    let inFlight = 0;
    // open loop at a fixed rate, at most 200 transactions waiting at once
    const load = (async () => {
      const every = 1000 / o.rate;
      for (let n = 0; !stop && n < 100_000_000; n++) {
        const due = started + n * every;
        if (due > Date.now()) await sleep(due - Date.now());
        if (inFlight >= 200) continue;
        const via = n % 4;
        inFlight++;
        const sentAt = Date.now();
        new Wallet(clients[via] as CustosClient, payers[n % payers.length] as Sm2KeyPair)
          .send({ to: "ecny", method: "transfer", args: [merchant, 1n] }, { timeoutMs: 30_000 })
          .then(
            (r) => {
              if (r.receipt?.success) {
                committed++;
                latencies.push(Date.now() - sentAt);
              } else failed++;
            },
            () => {
              failed++;
            },
          )
          .finally(() => {
            inFlight--;
          });
      }
    })();

    const faults = ["kill-restart", "lossy-link", "partition-one"];
    let faultNo = 0;
    let nextFault = started + o.faultEverySeconds * 1000;
    const samples: Sample[] = [];
    let lastDisk = dirBytes(join(t.nodes[0]?.home as string, "data"));
    let lastCommitted = 0;
    out(
      `soak: ${o.minutes} min at ${o.rate} tx/s, a fault every ${o.faultEverySeconds} s, a sample every ${o.sampleSeconds} s (${dir})`,
    );
    const header = [
      "t s",
      "height",
      "ok",
      "fail",
      "p50",
      "p95",
      "p99",
      "RSS MiB",
      "heap MiB",
      "disk MiB",
      "B/tx",
      "fault",
    ];
    const widths = [6, 7, 7, 5, 6, 6, 6, 22, 22, 9, 7, 30];
    let printedHeader = false;
    for (let k = 0; Date.now() < endAt && k < 1_000_000; k++) {
      const nextSample = Math.min(endAt, Date.now() + o.sampleSeconds * 1000);
      let fault = "";
      while (Date.now() < nextSample) {
        if (Date.now() >= nextFault) {
          const kind = faults[faultNo++ % faults.length];
          const v = faultNo % 4;
          nextFault = Date.now() + o.faultEverySeconds * 1000;
          if (kind === "kill-restart") {
            await kill(dir, v);
            fault = `kill -9 validator-${v}`;
            await sleep(10_000);
            await restart(dir, v, 60_000);
          } else if (kind === "lossy-link") {
            await setLinks(dir, v, "*", { delayMs: 20, jitterMs: 40, loss: 0.2 }, true);
            fault = `lossy links of validator-${v}`;
            await sleep(10_000);
            await heal(dir);
          } else {
            await partition(dir, [[v]]);
            fault = `validator-${v} partitioned`;
            await sleep(10_000);
            await heal(dir);
          }
        }
        await sleep(Math.max(0, Math.min(500, nextSample - Date.now())));
      }
      const lat = [...latencies].sort((a, b) => a - b);
      latencies = [];
      const disk = dirBytes(join(t.nodes[0]?.home as string, "data"));
      const s: Sample = {
        atSeconds: Math.round((Date.now() - started) / 1000),
        height: (await (clients[0] as CustosClient).status().catch(() => ({ height: -1 }))).height,
        committed,
        failed,
        latencyMs: lat.length > 0 ? latencySummary(lat) : { p50: 0, p95: 0, p99: 0 },
        rssMiB: t.nodes.map((n) => {
          try {
            return Math.round(procStats(n.pid).rssBytes / 2 ** 20);
          } catch {
            return Number.NaN;
          }
        }),
        heapMiB: (await Promise.all(t.nodes.map((n) => heapOf(n.rpc)))).map((b) => Math.round(b / 2 ** 20)),
        diskMiB: Math.round((disk / 2 ** 20) * 10) / 10,
        diskBytesPerTx:
          committed > lastCommitted ? Math.round((disk - lastDisk) / (committed - lastCommitted)) : 0,
        fault,
      };
      lastDisk = disk;
      lastCommitted = committed;
      samples.push(s);
      // the pids after a restart
      const fresh = JSON.parse(readFileSync(join(dir, "testnet.json"), "utf8")) as TestnetFile;
      for (const [i, n] of fresh.nodes.entries()) if (t.nodes[i]) (t.nodes[i] as { pid: number }).pid = n.pid;
      const row = [
        s.atSeconds,
        s.height,
        s.committed,
        s.failed,
        s.latencyMs.p50,
        s.latencyMs.p95,
        s.latencyMs.p99,
        s.rssMiB.join("/"),
        s.heapMiB.join("/"),
        s.diskMiB,
        s.diskBytesPerTx,
        s.fault,
      ];
      const lines = table(header, [row], widths);
      if (!printedHeader) {
        out(lines[0] as string);
        printedHeader = true;
      }
      out(lines[lines.length - 1] as string);
    }
    stop = true;
    await load;
    for (let k = 0; inFlight > 0 && k < 600; k++) await sleep(100);
    const result = {
      minutes: o.minutes,
      rate: o.rate,
      committed,
      failed,
      samples,
      rssGrowthMiB: samples.length > 1 ? (samples.at(-1)?.rssMiB[0] ?? 0) - (samples[0]?.rssMiB[0] ?? 0) : 0,
      diskBytesPerTx:
        committed > 0 ? Math.round(dirBytes(join(t.nodes[0]?.home as string, "data")) / committed) : 0,
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      out(
        `committed ${committed}, failed ${failed}; validator-0 RSS ${samples[0]?.rssMiB[0]} -> ${samples.at(-1)?.rssMiB[0]} MiB; ledger ${result.diskBytesPerTx} bytes per committed tx`,
      );
    return result;
  } finally {
    await down(dir).catch(() => {});
    if (!o.keep) await rm(dir, { recursive: true, force: true });
  }
}
