import { nullLogger } from "@custos/utils";
import { buildBlock, soloCertificate } from "../src/chain/blockBuilder.js";
import { Executor } from "../src/execution/executor.js";
import { Ledger } from "../src/ledger/ledger.js";
import type { WriteSet } from "../src/state/overlay.js";
import { genesisMemberWrites } from "../src/system/members.js";
import type { TestChain, tx } from "./helpers.js";

export async function openLedger(dir: string, chain: TestChain): Promise<Ledger> {
  const writes: WriteSet = new Map();
  genesisMemberWrites(chain.genesis, writes);
  return Ledger.open(dir, chain.genesis, writes, nullLogger);
}

/** Builds, executes and commits one block the way the sealer does. */
export async function commitBlock(ledger: Ledger, chain: TestChain, txs: ReturnType<typeof tx>[]) {
  const head = ledger.head;
  const built = await buildBlock(chain.genesis.chainId, head, txs, {
    timestamp: head.header.timestamp + 1000,
    proposer: 0,
    view: 0,
    executor: new Executor(chain.genesis, nullLogger),
    state: ledger,
  });
  const certificate = soloCertificate(chain.genesis.chainId, built.block, chain.validator);
  await ledger.commit({
    block: built.block,
    blockBytes: built.bytes,
    receipts: built.receiptBytes,
    writes: built.writes,
    certificate,
  });
  return { block: built.block, result: { receipts: built.receipts, writes: built.writes } };
}
