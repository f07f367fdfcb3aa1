import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportToJson, parseExport, verifyExport } from "@custos/audit";
import { generateKeyPair, VerifierPool } from "@custos/crypto";
import { AuditIndex, AuditService } from "@custos/node";
import { genesisToJson, quorumSize } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { benchChain } from "./chain.js";
import { type Ceiling, machine, measureVerifyCeiling } from "./load.js";
import { median } from "./stats.js";

export interface AuditVerifyBenchOptions {
  json: boolean;
  runs: number;
  entries: number;
  txsPerBlock: number;
  validators: number;
}

/**
 * How long an auditor waits for `custos audit verify` on a large export: a real chain (the
 * node's builder, executor and ledger; each block certified by a quorum of `validators`) where one
 * account has `entries` events (an issue, then transfers), its audit index built, its trace
 * exported to a file, then the file read and verified as the CLI does (every tx and commit
 * signature on the verifier pool, every inclusion proof, the chain of heads, the state proofs,
 * the figures recomputed), `runs` times.
 */
export async function runAuditVerifyBench(o: AuditVerifyBenchOptions): Promise<Record<string, unknown>> {
  const log = (s: string) => {
    if (!o.json) process.stderr.write(`${s}\n`);
  };
  const ceiling: Ceiling = await measureVerifyCeiling();
  const dir = await mkdtemp(join(tmpdir(), "custos-audit-bench-"));
  try {
    const operator = generateKeyPair();
    const alice = generateKeyPair();
    const bob = generateKeyPair();
    const { genesis, ledger, tx, commit } = await benchChain({
      dir,
      chainId: "custos-audit-bench",
      validators: o.validators,
      members: [
        { name: "operator", key: operator, roles: ["operator"] },
        { name: "alice", key: alice, roles: ["consumer"] },
        { name: "bob", key: bob, roles: ["consumer"] },
      ],
    });
    log(`building a chain where one account has ${o.entries} events (${o.txsPerBlock} txs a block)`);
    let t0 = performance.now();
    await commit([tx(operator, "issue", [alice.address, BigInt(o.entries) * 10n, "rc-bench"])]);
    for (let done = 1; done < o.entries; ) {
      const n = Math.min(o.txsPerBlock, o.entries - done);
      await commit(Array.from({ length: n }, () => tx(alice, "transfer", [bob.address, 1n])));
      done += n;
    }
    const buildMs = performance.now() - t0;
    log(`  ${ledger.head.height} blocks in ${Math.round(buildMs)} ms; indexing`);
    t0 = performance.now();
    const index = await AuditIndex.open(
      { dir: join(dir, "audit"), genesis },
      { chain: ledger, log: nullLogger },
    );
    index.start();
    await index.waitFor(ledger.head.height, { timeoutMs: 600_000 });
    const indexMs = performance.now() - t0;
    log(`  indexed in ${Math.round(indexMs)} ms; exporting`);
    t0 = performance.now();
    const service = new AuditService({ index, ledger, genesis });
    const exported = await service.export({
      kind: "trace",
      target: { account: alice.address },
      from: null,
      to: null,
    });
    const file = join(process.env.CUSTOS_BENCH_KEEP_EXPORT ?? dir, "export.json");
    if (process.env.CUSTOS_BENCH_KEEP_EXPORT)
      await writeFile(
        join(process.env.CUSTOS_BENCH_KEEP_EXPORT, "genesis.json"),
        JSON.stringify(genesisToJson(genesis)),
      );
    await writeFile(file, JSON.stringify(exportToJson(exported)));
    const exportMs = performance.now() - t0;
    const bytes = (await stat(file)).size;
    await index.close();
    await ledger.close();
    log(
      `  ${exported.entries.length} entries in ${exported.blocks.length} blocks, ${(bytes / 1e6).toFixed(1)} MB, in ${Math.round(exportMs)} ms`,
    );
    const runs: { readMs: number; verifyMs: number; totalMs: number }[] = [];
    for (let r = 0; r < o.runs; r++) {
      const pool = new VerifierPool();
      const s = performance.now();
      const x = parseExport(JSON.parse(await readFile(file, "utf8")));
      const read = performance.now();
      const report = await verifyExport(x, { genesis, verifier: pool });
      const end = performance.now();
      await pool.close();
      if (!report.ok) throw new Error(`the export did not verify: ${report.failures[0]?.message}`);
      runs.push({ readMs: read - s, verifyMs: end - read, totalMs: end - s });
      log(
        `  run ${r + 1}: read ${Math.round(read - s)} ms, verified in ${Math.round(end - read)} ms (${report.checked.txSignatures + report.checked.commitSignatures} signatures)`,
      );
    }
    const totals = runs.map((x) => x.totalMs);
    const result = {
      machine: machine(),
      ceiling,
      entries: exported.entries.length,
      blocks: exported.blocks.length,
      validators: o.validators,
      signatures: exported.entries.length + exported.blocks.length * quorumSize(o.validators),
      fileBytes: bytes,
      buildMs: Math.round(buildMs),
      indexMs: Math.round(indexMs),
      exportMs: Math.round(exportMs),
      verify: {
        runs: runs.map((x) => ({
          readMs: Math.round(x.readMs),
          verifyMs: Math.round(x.verifyMs),
          totalMs: Math.round(x.totalMs),
        })),
        minMs: Math.round(Math.min(...totals)),
        medianMs: Math.round(median(totals)),
        maxMs: Math.round(Math.max(...totals)),
      },
    };
    if (o.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      process.stdout.write(
        `${[
          `audit export of ${result.entries} entries (${result.blocks} blocks, ${o.validators} validators, ${result.signatures} signatures, ${(bytes / 1e6).toFixed(1)} MB)`,
          `  chain built ${result.buildMs} ms, indexed ${result.indexMs} ms, exported ${result.exportMs} ms`,
          `  read + verify (${o.runs} runs): min ${result.verify.minMs} ms, median ${result.verify.medianMs} ms, max ${result.verify.maxMs} ms`,
          `  SM2 verify ceiling in this run: ${ceiling.verifyPerCore}/s on one core, ${ceiling.verifyPool}/s on the pool (${ceiling.threads} threads)`,
        ].join("\n")}\n`,
      );
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
