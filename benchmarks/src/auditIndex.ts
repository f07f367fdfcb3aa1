import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPair } from "@custos/crypto";
import { AuditIndex } from "@custos/node";
import { nullLogger } from "@custos/utils";
import { benchChain } from "./chain.js";
import { machine } from "./load.js";
import { median } from "./stats.js";

export interface AuditIndexBenchOptions {
  json: boolean;
  runs: number;
  blocks: number;
  txsPerBlock: number;
}

/**
 * What the audit index costs a node per transaction: a real chain of `blocks` blocks of e-CNY
 * transfers among 10 members (built, certified and committed by the node's own code), then
 * `runs` times a new audit index is built over it from the ledger, and the process's CPU time
 * (every thread: LevelDB's included) and wall time are divided by the transactions. A node
 * indexes each block right after its commit from the block in memory; here the index also reads
 * and decodes each block and its receipts from the ledger, as it does when catching up.
 */
export async function runAuditIndexBench(o: AuditIndexBenchOptions): Promise<Record<string, unknown>> {
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  const dir = await mkdtemp(join(tmpdir(), "custos-audit-index-bench-"));
  try {
    const operator = generateKeyPair();
    const members = Array.from({ length: 10 }, () => generateKeyPair());
    const chain = await benchChain({
      dir,
      chainId: "custos-audit-index-bench",
      validators: 4,
      members: [
        { name: "operator", key: operator, roles: ["operator"] },
        ...members.map((key, i) => ({ name: `member-${i}`, key, roles: ["institution"] })),
      ],
    });
    log(`building ${o.blocks} blocks of ${o.txsPerBlock} transfers`);
    await chain.commit(
      members.map((m, i) => chain.tx(operator, "issue", [m.address, 10n ** 12n, `fund-${i}`])),
    );
    for (let b = 0; b < o.blocks; b++)
      await chain.commit(
        Array.from({ length: o.txsPerBlock }, (_, i) =>
          chain.tx(members[i % 10] as (typeof members)[0], "transfer", [members[(i + 1) % 10]?.address, 1n]),
        ),
      );
    const txs = o.blocks * o.txsPerBlock + members.length;
    const runs: { cpuUs: number; wallUs: number }[] = [];
    for (let r = 0; r < o.runs; r++) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const index = await AuditIndex.open(
        { dir: join(dir, `audit-${r}`), genesis: chain.genesis },
        { chain: chain.ledger, log: nullLogger },
      );
      index.start();
      await index.waitFor(chain.ledger.head.height, { timeoutMs: 600_000 });
      await index.close();
      const cpu = process.cpuUsage(cpu0);
      const run = { cpuUs: (cpu.user + cpu.system) / txs, wallUs: ((performance.now() - t0) * 1000) / txs };
      runs.push(run);
      log(`  run ${r + 1}: ${run.cpuUs.toFixed(1)} us of CPU a transaction`);
      await rm(join(dir, `audit-${r}`), { recursive: true, force: true });
    }
    await chain.ledger.close();
    const cpu = runs.map((x) => x.cpuUs);
    const wall = runs.map((x) => x.wallUs);
    const f = (x: number) => Math.round(x * 10) / 10;
    const result = {
      benchmark: "audit-index",
      date: new Date().toISOString(),
      machine: machine(),
      blocks: o.blocks,
      txsPerBlock: o.txsPerBlock,
      transactions: txs,
      cpuUsPerTx: {
        min: f(Math.min(...cpu)),
        median: f(median(cpu)),
        max: f(Math.max(...cpu)),
        runs: cpu.map(f),
      },
      wallUsPerTx: { min: f(Math.min(...wall)), median: f(median(wall)), max: f(Math.max(...wall)) },
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      process.stdout.write(
        `${[
          `audit index over ${txs} transfers (${o.blocks} blocks of ${o.txsPerBlock}), ${o.runs} runs, on ${result.machine.cpus} x ${result.machine.model}`,
          `  CPU per transaction (all threads): min ${result.cpuUsPerTx.min} us, median ${result.cpuUsPerTx.median} us, max ${result.cpuUsPerTx.max} us`,
          `  wall per transaction: min ${result.wallUsPerTx.min} us, median ${result.wallUsPerTx.median} us, max ${result.wallUsPerTx.max} us`,
        ].join("\n")}\n`,
      );
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
