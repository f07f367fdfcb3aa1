import { decode, encode, fieldAt, readArray, readBytes, readUint } from "@custos/codec";
import { LIMITS } from "@custos/types";
import type { TxPool, TxPoolEvents } from "../txpool/txpool.js";
import type { GossipVerdict } from "./network.js";

/** Codes a pool gives a gossiped tx that only a faulty or malicious sender could have caused. */
const SENDER_FAULT = new Set(["TX_MALFORMED", "TX_BAD_SIGNATURE", "TX_TOO_LARGE", "TX_WRONG_CHAIN"]);
const MAX_GOSSIP_TXS = 1024;

export interface TxGossipOptions {
  /** Sends one batch to the other validators. */
  publish: (data: Uint8Array) => void;
  /**
   * Whether pending transactions should be announced again: consensus is changing views, or a
   * validator just came (back).
   */
  troubled: () => boolean;
  flushMs?: number;
}

/**
 * Signed transactions accepted over RPC go to the other validators in batches: one message per
 * `flushMs` or per MAX_GOSSIP_TXS transactions, `[txs, batch number]`, on each validator's
 * consensus stream (P2pNetwork.broadcastTxs; the txs gossip topic for one of an earlier version). While
 * `troubled()`, what stays in the pool is announced again every 2 s (TxPool.dueForAnnouncement):
 * the peers that missed the first gossip get it, and whoever leads the next view can propose it.
 * In normal operation nothing is gossiped twice.
 */
export class TxGossip {
  private pending: Uint8Array[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reannouncer: NodeJS.Timeout | undefined;
  private sequence = 0;
  private readonly onAdded = (e: TxPoolEvents["tx:added"][0]) => {
    if (e.source === "rpc") this.add(e.tx.bytes);
  };

  constructor(
    private readonly opts: TxGossipOptions,
    private readonly pool: TxPool,
  ) {}

  start(): void {
    this.pool.on("tx:added", this.onAdded);
    this.reannouncer = setInterval(() => {
      if (!this.opts.troubled()) return;
      for (const t of this.pool.dueForAnnouncement(Date.now(), MAX_GOSSIP_TXS, 2000)) this.add(t.bytes);
      this.flush();
    }, 1000);
  }

  stop(): void {
    this.pool.off("tx:added", this.onAdded);
    clearInterval(this.reannouncer);
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  add(tx: Uint8Array): void {
    this.pending.push(tx);
    if (this.pending.length >= MAX_GOSSIP_TXS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.opts.flushMs ?? 10);
  }

  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    // gossip names a message by its bytes and drops one it has seen: the batch number keeps an
    // announcement of the same transactions again from being taken for the first one
    this.opts.publish(encode([batch, this.sequence]));
    this.sequence = (this.sequence + 1) >>> 0;
  }

  /** A batch from a peer (either way): every tx goes to the pool; one a sender could only have forged rejects it all. */
  async receive(data: Uint8Array): Promise<GossipVerdict> {
    const pool = this.pool;
    let txs: Uint8Array[];
    try {
      const S = "TxBatch";
      const [list, sequence] = readArray(decode(data, S, LIMITS.maxBlockBytes), fieldAt(S, ""), 2);
      readUint(sequence, fieldAt(S, "sequence"));
      txs = readArray(list, fieldAt(S, "txs"), {
        min: 1,
        max: MAX_GOSSIP_TXS,
      }).map((t, i) => readBytes(t, fieldAt(S, `txs[${i}]`), { max: 1024 * 1024 }));
    } catch {
      return "reject";
    }
    const results = await Promise.allSettled(txs.map((t) => pool.add(t, "gossip")));
    let added = 0;
    for (const r of results) {
      if (r.status === "fulfilled") added++;
      else if (SENDER_FAULT.has((r.reason as { code?: string }).code ?? "")) return "reject";
    }
    return added > 0 ? "accept" : "ignore";
  }
}
