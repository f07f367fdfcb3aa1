import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decode, encode } from "@custos/codec";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { Executor, initHome, Overlay, openChainLedger } from "@custos/node";
import { parseGenesis, type SignedTx, signTx } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { type ContractState, VmSession } from "@custos/vm";
import { measureVerifyCeiling } from "./load.js";
import { median } from "./stats.js";

export interface VmBenchOptions {
  runs: number;
  ms: number;
  json: boolean;
  /** Contract calls per block in the executor phase. */
  blockTxs: number;
}

/** ~10 storage operations per call: five reads, five writes. */
const CONTRACT = `
const { storage } = custos;
export function touch(i) {
  let sum = 0;
  for (let k = 0; k < 5; k++) {
    const v = storage.get("k" + ((i + k) % 1000));
    sum += v === null ? 0 : Number(v);
  }
  for (let k = 0; k < 5; k++) storage.set("k" + ((i * 5 + k) % 1000), String((sum + k) % 1000));
  return sum;
}
export function nothing() { return 0; }
`;

class MapState implements ContractState {
  readonly kv = new Map<string, string>();
  get(k: string) {
    return this.kv.get(k);
  }
  scan() {
    return [];
  }
  balanceOf() {
    return 0n;
  }
  memberOf() {
    return undefined;
  }
}

/**
 * Contract calls per second on one core: the VM alone (fresh QuickJS runtime and context per
 * call's state restored from the engine's snapshot, in-memory storage), and the node's executor running whole blocks of contract-call
 * transactions against a LevelDB ledger (receipts, overlays, gas; signatures are checked at
 * admission, not here). Ceilings measured in the same run: an empty call (what a fresh
 * snapshot restore and the dispatch cost) and SM2 verify per core (every tx pays one).
 */
export async function runVmBench(o: VmBenchOptions): Promise<Record<string, unknown>> {
  const session = await VmSession.open();
  const env = {
    caller: `0x${"a".repeat(40)}`,
    self: `0x${"c".repeat(40)}`,
    height: 1,
    time: 0,
    txHash: "0x",
    value: 0n,
  };
  const state = new MapState();
  const gas = (await session.call({ code: CONTRACT, method: "touch", args: [1], env, state })).gasUsed;
  const vmRuns: number[] = [];
  const emptyRuns: number[] = [];
  for (let r = 0; r < o.runs; r++) {
    vmRuns.push(
      await asyncOpsPerSecond(
        (i) => session.call({ code: CONTRACT, method: "touch", args: [i], env, state }),
        o.ms,
      ),
    );
    emptyRuns.push(
      await asyncOpsPerSecond(
        () => session.call({ code: CONTRACT, method: "nothing", args: [], env, state }),
        o.ms,
      ),
    );
  }

  const verify = (await measureVerifyCeiling()).verifyPerCore;

  const executor = await executorPhase(o);
  const report = {
    benchmark: "vm",
    contractMethod: "touch: 5 storage reads + 5 writes",
    gasPerCall: gas.toString(),
    vmCallsPerSec: Math.round(median(vmRuns)),
    vmRuns: vmRuns.map(Math.round),
    executorCallsPerSec: executor.median,
    executorRuns: executor.runs,
    blockTxs: o.blockTxs,
    ceilingEmptyCallsPerSec: Math.round(median(emptyRuns)),
    ceilingSm2VerifyPerCore: verify,
    target: 3000,
  };
  if (o.json) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(
      `VM contract calls (${report.contractMethod}; ${report.gasPerCall} gas each), one core, median of ${o.runs}:`,
    );
    console.log(`  VM alone:          ${report.vmCallsPerSec} calls/s  (runs ${report.vmRuns.join(", ")})`);
    console.log(
      `  executor + LevelDB: ${report.executorCallsPerSec} calls/s  (blocks of ${o.blockTxs}; runs ${report.executorRuns.join(", ")})`,
    );
    console.log(
      `  ceiling: empty call ${report.ceilingEmptyCallsPerSec}/s (snapshot restore + dispatch, no storage)`,
    );
    console.log(`  ceiling: SM2 verify ${verify}/s per core (one per transaction, at admission)`);
    console.log(`  target:  3000 calls/s per core`);
  }
  return report;
}

async function asyncOpsPerSecond(fn: (i: number) => Promise<unknown>, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (let k = 0; k < 16; k++) await fn(n++);
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

async function executorPhase(o: VmBenchOptions): Promise<{ median: number; runs: number[] }> {
  const home = await mkdtemp(join(tmpdir(), "custos-bench-vm-"));
  try {
    const init = await initHome({ home: join(home, "n"), dev: true, kdfIterations: 1000 });
    const password = (await readFile(join(home, "n", "dev-password"), "utf8")).trim();
    const keys: Record<string, Sm2KeyPair> = {};
    for (const a of init.accounts ?? []) keys[a.name] = await loadKeystoreFile(a.keyFile, password);
    const genesis = parseGenesis(JSON.parse(await readFile(join(home, "n", "genesis.json"), "utf8")));
    const ledger = await openChainLedger(join(home, "ledger"), genesis, nullLogger);
    const executor = new Executor(genesis, nullLogger);
    const tx = (from: string, to: string, method: string, args: unknown[]): SignedTx =>
      signTx(
        {
          version: 1,
          chainId: genesis.chainId,
          nonce: randomBytes(16),
          blockLimit: 100,
          sender: (keys[from] as Sm2KeyPair).publicKey,
          to,
          method,
          args: encode(args),
          value: 0n,
          memo: null,
        },
        (keys[from] as Sm2KeyPair).privateKey,
      );
    // Setup blocks, kept in an overlay above the ledger: submit, two approvals, instantiate.
    const state = new Overlay(ledger);
    let height = 1;
    const run = async (txs: SignedTx[]) => {
      const r = await executor.executeBlock(
        txs,
        { height: height++, timestamp: genesis.timestamp + height },
        state,
      );
      for (const [k, w] of r.writes) state.writes.set(k, w);
      return r.receipts;
    };
    const [submitted] = await run([
      tx("bank", "templates", "submit", ["bench", "1.0.0", "", [], "bench", CONTRACT]),
    ]);
    const out = decode(submitted?.output as Uint8Array, "Output", 1 << 16) as Map<string, unknown>;
    const codeHash = out.get("codeHash") as string;
    const proposalId = out.get("proposalId") as number;
    await run([tx("committee-1", "governance", "vote", [proposalId, true])]);
    await run([tx("committee-2", "governance", "vote", [proposalId, true])]);
    const [created] = await run([tx("bank", "templates", "instantiate", [codeHash, null])]);
    const address = (decode(created?.output as Uint8Array, "Output", 1024) as Map<string, unknown>).get(
      "address",
    ) as string;
    const callers = ["consumer-1", "consumer-2", "consumer-3", "merchant-1"];
    const runs: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const block = Array.from({ length: o.blockTxs }, (_, i) =>
        tx(callers[i % callers.length] as string, address, "touch", [r * o.blockTxs + i]),
      );
      const t0 = performance.now();
      const receipts = await run(block);
      const secs = (performance.now() - t0) / 1000;
      const failed = receipts.filter((x) => !x.success);
      if (failed.length)
        throw new Error(`${failed.length} calls failed: ${failed[0]?.errorCode} ${failed[0]?.errorMessage}`);
      runs.push(Math.round(o.blockTxs / secs));
    }
    await ledger.close();
    return { median: Math.round(median(runs)), runs };
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}
