import { EventEmitter } from "node:events";
import type { Sm2KeyPair } from "@custos/crypto";
import type { Block, CommitCertificate, Genesis, Receipt } from "@custos/types";
import { bytesEqual, errorMessage, type Logger, toHex } from "@custos/utils";
import type { Executor } from "../execution/executor.js";
import type { Ledger } from "../ledger/ledger.js";
import type { TxPool } from "../txpool/txpool.js";
import { buildBlock, soloCertificate } from "./blockBuilder.js";

export interface CommittedBlock {
  block: Block;
  receipts: Receipt[];
  certificate: CommitCertificate;
}

export interface SealerEvents {
  "block:committed": [CommittedBlock];
  "sealer:failed": [Error];
}

/**
 * The one-validator block producer that stands where the PBFT engine will (issue 4): it seals
 * when the pool has transactions and the minimum block interval has passed (never an empty
 * block), executes, signs the commit vote as validator 0 and commits the block with that
 * certificate. A failure to write the ledger stops it and is reported ("sealer:failed"): the
 * node must not go on after a lost write.
 */
export class SoloSealer extends EventEmitter<SealerEvents> {
  private timer: NodeJS.Timeout | undefined;
  private sealing: Promise<void> | undefined;
  private stopped = false;
  private lastSealAt = 0;

  constructor(
    private readonly genesis: Genesis,
    private readonly ledger: Ledger,
    private readonly executor: Executor,
    private readonly pool: TxPool,
    private readonly key: Sm2KeyPair,
    private readonly log: Logger,
  ) {
    super();
    const v0 = genesis.consensus.validators[0];
    if (
      genesis.consensus.validators.length !== 1 ||
      v0 === undefined ||
      !bytesEqual(v0.publicKey, key.publicKey)
    ) {
      throw new Error("the solo sealer needs a genesis with exactly one validator holding this node's key");
    }
    pool.onAdded(() => this.schedule());
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sealing;
  }

  private schedule(): void {
    if (this.stopped || this.timer !== undefined || this.sealing !== undefined || this.pool.size === 0)
      return;
    const wait = Math.max(0, this.lastSealAt + this.genesis.consensus.minBlockIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sealing = this.seal()
        .catch((err: Error) => {
          this.stopped = true;
          this.log.error("sealing failed; block production stopped", { error: errorMessage(err) });
          this.emit("sealer:failed", err);
        })
        .finally(() => {
          this.sealing = undefined;
          this.schedule();
        });
    }, wait);
  }

  private async seal(): Promise<void> {
    const head = this.ledger.head;
    const height = head.height + 1;
    const txs = this.pool.take(this.genesis.consensus.maxBlockTxs, height);
    if (txs.length === 0) return;
    this.lastSealAt = Date.now();
    const timestamp = Math.max(Date.now(), head.header.timestamp + 1);
    const built = await buildBlock(this.genesis.chainId, head, txs, {
      timestamp,
      proposer: 0,
      view: 0,
      executor: this.executor,
      state: this.ledger,
    });
    const { block } = built;
    const certificate = soloCertificate(this.genesis.chainId, block, this.key);
    await this.ledger.commit({
      block,
      blockBytes: built.bytes,
      receipts: built.receiptBytes,
      writes: built.writes,
      certificate,
    });
    this.pool.remove(txs);
    this.log.info("block committed", { height, txs: txs.length, hash: toHex(block.hash) });
    this.emit("block:committed", { block, receipts: built.receipts, certificate });
  }
}
