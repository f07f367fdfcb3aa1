import type { Logger } from "@custos/utils";
import type { Metrics } from "./metrics.js";
import type { TxPool, TxPoolEvents } from "./txpool/txpool.js";

/** How often refusals for a busy chain are written, as one line with their count. */
const BUSY_SUMMARY_MS = 1000;

/**
 * The operations log (HOME/logs/ops.log): every write request a client made to this node,
 * accepted (with its sender, target and method) or refused (with its code and reason); refusals
 * are counted in the metrics too. Transactions that came by gossip are other nodes' clients'.
 *
 * Refusals because the chain is busy (TX_POOL_FULL: it says nothing of the transaction, and most
 * are given before it is even decoded) are written as one line a second with their count: under
 * overload they can be half the requests, and a line each would spend the node's CPU and disk on
 * the overload itself.
 */
export class OpsLog {
  private busy = 0;
  private busySince = 0;
  private timer: NodeJS.Timeout | undefined;

  private readonly added = (e: TxPoolEvents["tx:added"][0]) => {
    if (e.source !== "rpc") return;
    this.ops.info("tx accepted", {
      hash: `0x${Buffer.from(e.tx.hash).toString("hex")}`,
      from: e.sender,
      to: e.tx.tx.to,
      method: e.tx.tx.method,
    });
  };
  private readonly rejected = (e: TxPoolEvents["tx:rejected"][0]) => {
    if (e.source !== "rpc") return;
    this.metrics.txRejected(e.code);
    if (e.code !== "TX_POOL_FULL") {
      this.ops.info("tx refused", { code: e.code, reason: e.reason });
      return;
    }
    if (this.busy === 0) {
      this.busySince = Date.now();
      this.timer = setTimeout(() => this.flushBusy(), BUSY_SUMMARY_MS);
      this.timer.unref();
    }
    this.busy++;
  };

  constructor(
    private readonly pool: TxPool,
    private readonly ops: Logger,
    private readonly metrics: Metrics,
  ) {}

  start(): void {
    this.pool.on("tx:added", this.added);
    this.pool.on("tx:rejected", this.rejected);
  }

  stop(): void {
    this.pool.off("tx:added", this.added);
    this.pool.off("tx:rejected", this.rejected);
    this.flushBusy();
  }

  private flushBusy(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.busy === 0) return;
    this.ops.info("txs refused: the chain is busy", {
      code: "TX_POOL_FULL",
      count: this.busy,
      since: new Date(this.busySince).toISOString(),
    });
    this.busy = 0;
  }
}
