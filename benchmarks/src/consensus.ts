import { cpus } from "node:os";
import { Simulation } from "@custos/consensus/sim";
import { generateKeyPair, NativeSm2Backend } from "@custos/crypto";
import { median, opsPerSecond } from "./stats.js";

export interface ConsensusBenchOptions {
  runs: number;
  ms: number;
  json: boolean;
}

/**
 * The PBFT engine's own cost: n engines in one process over the simulator's network with no
 * delay, no loss and zero-cost execution, run until every replica has committed `blocks` blocks.
 * Signatures are the simulator's SM3 stand-in, so the figure is the engine's overhead; the
 * SM2 bound beside it is what signature checks alone would allow on this machine.
 */
export async function runConsensusBench(o: ConsensusBenchOptions): Promise<Record<string, unknown>> {
  let verifyPerCore = 0;
  try {
    const native = new NativeSm2Backend();
    const k = generateKeyPair();
    const msg = new Uint8Array(120);
    const sig = native.sign(k.privateKey, msg);
    verifyPerCore = Math.round(opsPerSecond(() => native.verify(k.publicKey, msg, sig), 500));
  } catch {
    verifyPerCore = 0;
  }
  const rows = [];
  for (const n of [4, 7, 10, 16]) {
    const blocks = n <= 7 ? 300 : n <= 10 ? 150 : 60;
    const rates: number[] = [];
    let messagesPerBlock = 0;
    for (let r = 0; r < o.runs; r++) {
      const sim = new Simulation({
        seed: r + 1,
        n,
        byzantine: new Map(),
        durationMs: 10_000_000,
        delay: [0, 0],
        loss: 0,
        duplicate: 0,
        partitions: [],
        crashes: [],
        baseTimeoutMs: 1_000_000,
      });
      sim.stopAtHeight = blocks;
      const t0 = performance.now();
      sim.run();
      const secs = (performance.now() - t0) / 1000;
      rates.push(blocks / secs);
      messagesPerBlock = sim.messages / blocks;
    }
    const perNode = messagesPerBlock / n;
    rows.push({
      n,
      blocks,
      blocksPerSec: Math.round(median(rates)),
      runs: rates.map(Math.round),
      messagesPerBlock: Math.round(messagesPerBlock),
      messagesPerNodePerBlock: Math.round(perNode),
      // every replica verifies each message it receives: its SM2 budget per block
      sm2BoundBlocksPerSecPerNode: verifyPerCore ? Math.round(verifyPerCore / perNode) : null,
    });
  }
  const report = {
    benchmark: "consensus",
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.versions.node },
    method: `all n engines in one process, zero network delay, zero-cost execution; median of ${o.runs} runs`,
    ceiling: { sm2VerifyPerCore: verifyPerCore },
    results: rows,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else {
    const lines = [
      `consensus benchmark on ${report.machine.cpus} x ${report.machine.model}, Node ${report.machine.node}`,
      report.method,
      `ceiling (same run): SM2 verify ${verifyPerCore}/s on one core`,
      "",
      `${"n".padStart(3)}${"blocks".padStart(8)}${"blocks/s".padStart(10)}${"msgs/block".padStart(12)}${"msgs/node".padStart(11)}${"SM2 bound".padStart(11)}   runs`,
      ...rows.map(
        (r) =>
          `${String(r.n).padStart(3)}${String(r.blocks).padStart(8)}${String(r.blocksPerSec).padStart(10)}${String(r.messagesPerBlock).padStart(12)}${String(r.messagesPerNodePerBlock).padStart(11)}${String(r.sm2BoundBlocksPerSecPerNode ?? "-").padStart(11)}   ${r.runs.join(" ")}`,
      ),
      "",
      "blocks/s: all n replicas simulated on one core, so per-replica engine cost is n times smaller;",
      "msgs/node: messages each replica receives (and verifies) per block; SM2 bound: blocks/s one core could verify",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return report;
}
