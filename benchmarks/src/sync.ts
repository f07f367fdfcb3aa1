import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient } from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile, type Sm2KeyPair, sm2Sign } from "@custos/crypto";
import { buildBlock, commitOf, Executor, homePaths, openChainLedger } from "@custos/node";
import * as testnet from "@custos/testnet";
import { commitVoteBytes, parseGenesis, type SignedTx, signTx, TX_VERSION } from "@custos/types";
import { nullLogger } from "@custos/utils";
import { type Ceiling, machine, measureVerifyCeiling, procStats, sleep } from "./load.js";

export interface SyncBenchOptions {
  json: boolean;
  blocks: number;
  txsPerBlock: number;
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
    signTx(
      {
        version: TX_VERSION,
        chainId: genesis.chainId,
        nonce: new Uint8Array(randomBytes(16)),
        blockLimit: height + 10,
        sender: key.publicKey,
        to: "ecny",
        method,
        args: encode(args),
        value: 0n,
        memo: null,
      },
      key.privateKey,
    );
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
      const head = ledger.head;
      const built = await buildBlock(genesis.chainId, head, txs, {
        timestamp: head.header.timestamp + 10,
        proposer: h % v.length,
        view: 0,
        executor,
        state: ledger,
      });
      const vote = commitVoteBytes(genesis.chainId, h, 0, built.block.hash);
      await ledger.commit(
        commitOf(built, {
          version: 1,
          chainId: genesis.chainId,
          height: h,
          view: 0,
          blockHash: built.block.hash,
          signatures: validatorKeys.map((k, validator) => ({
            validator,
            signature: sm2Sign(k.privateKey, vote),
          })),
        }),
      );
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

interface SyncLog {
  blocks: number;
  seconds: number;
}

async function syncLog(home: string): Promise<SyncLog | undefined> {
  const lines = (await readFile(join(home, "logs", "node.log"), "utf8")).split("\n");
  for (const l of lines.reverse()) {
    if (!l.includes('"block sync finished"')) continue;
    const j = JSON.parse(l) as { blocks: number; seconds: number };
    if (j.blocks > 0) return { blocks: j.blocks, seconds: j.seconds };
  }
  return undefined;
}

/**
 * `npm run bench -- sync [--blocks N] [--txs-per-block K]`: an observer that starts from zero
 * catches up on a chain of N blocks served by 4 validator processes; reports its replay rate
 * (blocks/s, tx/s), wall time from process start, CPU and RSS, beside the machine's SM2 verify
 * ceiling (the observer checks 3 certificate signatures and every tx signature per block).
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
    await rm(homePaths(t.nodes[4]?.home as string).ledger, { recursive: true, force: true });
    for (let i = 0; i < 4; i++) await testnet.restart(dir, i);
    const t0 = performance.now();
    const observer = await testnet.restart(dir, 4);
    const client = new CustosClient(observer.rpc, { timeoutMs: 5000 });
    const deadline = Date.now() + 15 * 60_000;
    while ((await client.status()).height < o.blocks) {
      if (Date.now() > deadline) throw new Error("the observer did not catch up within 15 minutes");
      await sleep(100);
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    const proc = procStats(observer.pid);
    const log = await syncLog(observer.home);
    const seconds = log?.seconds ?? wallSeconds;
    const perBlockVerifies = 3 + o.txsPerBlock;
    const result = {
      benchmark: "sync",
      machine: machine(),
      blocks: o.blocks,
      txs,
      generateSeconds: Number(generateSeconds.toFixed(1)),
      observer: {
        syncSeconds: Number(seconds.toFixed(2)),
        wallSecondsFromProcessStart: Number(wallSeconds.toFixed(2)),
        blocksPerSecond: Math.round(o.blocks / seconds),
        txPerSecond: Math.round(txs / seconds),
        cpuSeconds: proc.cpuSeconds,
        rssMiB: Math.round(proc.rssBytes / 2 ** 20),
      },
      ceiling: {
        ...ceiling,
        /** Blocks/s if SM2 verification on all cores were the only cost. */
        blocksPerSecondIfOnlyVerifying: Math.round(ceiling.verifyPool / perBlockVerifies),
      },
    };
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(
        `sync: an observer from zero on ${o.blocks} blocks (${txs} txs), 4 validator processes serving`,
      );
      console.log(`  generated the chain in ${result.generateSeconds} s (not part of the figure)`);
      console.log(
        `  replay: ${result.observer.blocksPerSecond} blocks/s, ${result.observer.txPerSecond} tx/s (${result.observer.syncSeconds} s; ${result.observer.wallSecondsFromProcessStart} s from process start)`,
      );
      console.log(`  observer CPU ${proc.cpuSeconds.toFixed(1)} s, RSS ${result.observer.rssMiB} MiB`);
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
