import type { Logger } from "@custos/utils";
import type { Metrics } from "./metrics.js";
import type { TxPool, TxPoolEvents } from "./txpool/txpool.js";

/**
 * The operations log (HOME/logs/ops.log): every write request a client made to this node,
 * accepted (with its sender, target and method) or refused (with its code and reason); refusals
 * are counted in the metrics too. Transactions that came by gossip are other nodes' clients'.
 */
export class OpsLog {
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
    this.ops.info("tx refused", { code: e.code, reason: e.reason });
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
  }
}
