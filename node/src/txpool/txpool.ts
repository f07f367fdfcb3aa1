import { EventEmitter } from "node:events";
import type { Address, VerifierPool } from "@custos/crypto";
import { decodeSignedTx, type SignedTx } from "@custos/types";
import { CustosError, errorMessage, isCustosError, type Logger, refusal, toHex } from "@custos/utils";
import { senderAddress } from "../execution/senders.js";

export interface TxPoolOptions {
  /** Most transactions held. */
  maxTxs: number;
  /** Most bytes held. */
  maxBytes: number;
  /** Most pending transactions of one sender. */
  maxPerSender: number;
  /** Largest transaction admitted (never above the wire limit). */
  maxTxBytes: number;
  /**
   * Admission control for clients (RPC): at most this many seconds of the chain's measured
   * throughput may wait in the pool (never fewer than `minQueue` transactions); beyond it, and
   * once the oldest waiting transaction has waited this long, a client's transaction is refused
   * with the retryable TX_POOL_FULL instead of queueing into a latency spiral. The age says
   * whether the chain is behind: after a rise in load the measured throughput lags what the
   * chain can do, and a queue that drains within the bound is not refused. Gossiped transactions
   * (admitted by a peer) are bound by `maxTxs` alone, so that every validator holds what the
   * leader may propose. 0 turns it off.
   */
  queueSeconds: number;
  minQueue: number;
}

export const DEFAULT_POOL_OPTIONS: TxPoolOptions = {
  maxTxs: 50_000,
  maxBytes: 64 * 1024 * 1024,
  maxPerSender: 10_000,
  // contract code travels in templates.submit: a bundle of up to 56 KiB plus its metadata
  maxTxBytes: 64 * 1024,
  // what is admitted waits this long at most, then a round or two: under 2 s above saturation
  // (at 1 s, p99 of four validators offered twice what they commit was 2.0-2.7 s in 9 runs of
  // 10 on 2026-12-04; at 0.75 s, 1.3-2.5 s, 6 of 10 under 2 s; at 0.5 s, refusals at 1,000/s)
  queueSeconds: 0.75,
  minQueue: 500,
};

/** Where a transaction came from: a client of this node, or a peer's gossip. */
export type TxSource = "rpc" | "gossip";

export type TxPoolErrorCode =
  | "TX_TOO_LARGE"
  | "TX_MALFORMED"
  | "TX_WRONG_CHAIN"
  | "TX_BLOCK_LIMIT_EXPIRED"
  | "TX_BLOCK_LIMIT_TOO_FAR"
  | "TX_DUPLICATE"
  | "TX_ALREADY_COMMITTED"
  | "TX_BAD_SIGNATURE"
  | "TX_SENDER_NOT_MEMBER"
  | "TX_POOL_FULL"
  | "TX_SENDER_QUOTA";

/**
 * What the pool tells its subscribers (the operations log, gossip, metrics, consensus): each
 * admitted transaction with its sender, and each refusal with its code.
 */
export interface TxPoolEvents {
  "tx:added": [{ tx: SignedTx; sender: Address; source: TxSource }];
  "tx:rejected": [{ code: string; reason: string; source: TxSource }];
}

/** What admission needs from the chain. */
export interface PoolChainView {
  chainId: string;
  blockLimitWindow: number;
  headHeight(): number;
  isCommitted(hash: Uint8Array): Promise<boolean>;
  isMember(address: Address): Promise<boolean>;
}

interface Entry {
  tx: SignedTx;
  sender: Address;
  /** When it was last announced to the peers (admission counts). */
  announcedAt: number;
  /** When it was admitted. */
  admittedAt: number;
}

function full(): CustosError {
  return refusal("TX_POOL_FULL", "the transaction pool is full; retry shortly", { retryable: true });
}

/**
 * Pending transactions in arrival order. Admission checks size, encoding, chain id, the
 * blockLimit window, duplicates (pending or committed), membership, capacity and the signature
 * (on the verifier pool); a transaction in the pool has been verified and is not verified again
 * when its block executes.
 */
export class TxPool extends EventEmitter<TxPoolEvents> {
  private readonly pending = new Map<string, Entry>();
  /** Admissions under way (decoded, being checked and verified), each settled when it ends. */
  private readonly inFlight = new Map<string, (() => void)[] | undefined>();
  private readonly perSender = new Map<Address, number>();
  private totalBytes = 0;

  constructor(
    private readonly opts: TxPoolOptions,
    private readonly chain: PoolChainView,
    private readonly verifier: VerifierPool,
    private readonly log: Logger,
  ) {
    super();
  }

  get size(): number {
    return this.pending.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  get(hash: Uint8Array): SignedTx | undefined {
    return this.pending.get(toHex(hash))?.tx;
  }

  /**
   * The pending transaction, once an admission of it that is under way has ended (a gossiped tx
   * is decoded at once but verified on the verifier pool: a proposal that names it may arrive in
   * between, and should not fetch from a peer what is about to be here).
   */
  async settled(hash: Uint8Array): Promise<SignedTx | undefined> {
    const id = toHex(hash);
    if (this.inFlight.has(id)) {
      await new Promise<void>((resolve) => {
        const waiters = this.inFlight.get(id) ?? [];
        waiters.push(resolve);
        this.inFlight.set(id, waiters);
      });
    }
    return this.pending.get(id)?.tx;
  }

  /** Admits a transaction (announced as tx:added) or throws why not (announced as tx:rejected). */
  async add(bytes: Uint8Array, source: TxSource = "rpc"): Promise<SignedTx> {
    try {
      const { stx, sender } = await this.admit(bytes, source);
      this.emit("tx:added", { tx: stx, sender, source });
      return stx;
    } catch (err) {
      this.emit("tx:rejected", {
        code: (err as { code?: string }).code ?? "INTERNAL",
        reason: errorMessage(err),
        source,
      });
      throw err;
    }
  }

  /** Transactions committed per second (exponentially weighted), from what `remove` takes out. */
  private rate = 0;
  private rateAt = Date.now();

  /**
   * The chain's measured throughput (txs/s), as admission control sees it: it decays while
   * transactions wait and nothing commits (a stalled chain admits less and less), not while the
   * pool is empty.
   */
  get throughput(): number {
    if (this.pending.size === 0) return this.rate;
    return this.rate * Math.exp(-Math.max(0, Date.now() - this.rateAt) / 5000);
  }

  /** How many transactions may wait for a client's to be admitted (see queueSeconds). */
  get clientLimit(): number {
    if (this.opts.queueSeconds <= 0) return this.opts.maxTxs;
    return Math.min(
      this.opts.maxTxs,
      Math.max(this.opts.minQueue, Math.ceil(this.throughput * this.opts.queueSeconds)),
    );
  }

  /** How long the oldest pending transaction has waited, ms (0 for an empty pool). */
  oldestWaitMs(): number {
    const first = this.pending.values().next();
    return first.done ? 0 : Math.max(0, Date.now() - first.value.admittedAt);
  }

  /**
   * A client's transaction waits behind more than queueSeconds of throughput and the oldest has
   * waited queueSeconds: the chain is behind (see TxPoolOptions.queueSeconds).
   */
  private behind(): boolean {
    // the age first: it is one map lookup, the count's limit decays the throughput estimate
    return this.oldestWaitMs() >= this.opts.queueSeconds * 1000 && this.pending.size >= this.clientLimit;
  }

  private async admit(bytes: Uint8Array, source: TxSource): Promise<{ stx: SignedTx; sender: Address }> {
    if (bytes.byteLength > this.opts.maxTxBytes) {
      throw new CustosError(
        "TX_TOO_LARGE",
        `transaction is ${bytes.byteLength} bytes, the limit is ${this.opts.maxTxBytes}`,
      );
    }
    // a busy chain refuses a client before spending anything on the transaction: above
    // saturation every refusal's decode, hash and lookups come out of what commits. What is
    // wrong with it (encoding, chain, blockLimit, sender) is told on a retry when not busy.
    if (source === "rpc" && this.behind()) throw this.busy();
    let stx: SignedTx;
    try {
      stx = decodeSignedTx(bytes);
    } catch (err) {
      if (isCustosError(err) && err.code.startsWith("DECODE_"))
        throw new CustosError("TX_MALFORMED", `malformed transaction: ${err.message}`, err.meta);
      throw err;
    }
    const { tx } = stx;
    if (tx.chainId !== this.chain.chainId) {
      throw new CustosError(
        "TX_WRONG_CHAIN",
        `transaction is for chain ${tx.chainId}, this is ${this.chain.chainId}`,
      );
    }
    const height = this.chain.headHeight();
    if (tx.blockLimit <= height) {
      throw new CustosError(
        "TX_BLOCK_LIMIT_EXPIRED",
        `blockLimit ${tx.blockLimit} has passed (height ${height}); rebuild with a fresh blockLimit`,
        {
          blockLimit: tx.blockLimit,
          height,
        },
      );
    }
    if (tx.blockLimit > height + this.chain.blockLimitWindow) {
      throw new CustosError(
        "TX_BLOCK_LIMIT_TOO_FAR",
        `blockLimit ${tx.blockLimit} is more than ${this.chain.blockLimitWindow} blocks ahead of height ${height}`,
        { blockLimit: tx.blockLimit, height },
      );
    }
    const id = toHex(stx.hash);
    if (this.pending.has(id) || this.inFlight.has(id)) {
      throw refusal("TX_DUPLICATE", `transaction ${id} is already pending`);
    }
    this.inFlight.set(id, undefined);
    try {
      if (await this.chain.isCommitted(stx.hash)) {
        throw refusal(
          "TX_ALREADY_COMMITTED",
          `transaction ${id} was already committed; a signed transaction runs once`,
        );
      }
      let sender: Address;
      try {
        sender = senderAddress(tx.sender);
      } catch {
        throw new CustosError("TX_BAD_SIGNATURE", "the sender's public key is not a point on the SM2 curve");
      }
      if (!(await this.chain.isMember(sender))) {
        throw new CustosError("TX_SENDER_NOT_MEMBER", `${sender} is not a member of this chain`);
      }
      if (this.pending.size >= this.opts.maxTxs || this.totalBytes + bytes.byteLength > this.opts.maxBytes) {
        throw full();
      }
      // checked again: others may have been admitted while this one was awaited
      if (source === "rpc" && this.behind()) throw this.busy();
      if ((this.perSender.get(sender) ?? 0) >= this.opts.maxPerSender) {
        throw refusal(
          "TX_SENDER_QUOTA",
          `${sender} has ${this.opts.maxPerSender} transactions pending; retry shortly`,
          {
            retryable: true,
          },
        );
      }
      if (!(await this.verifier.verify(tx.sender, stx.body, stx.signature))) {
        throw new CustosError(
          "TX_BAD_SIGNATURE",
          "the signature does not verify for the sender's key over the body",
        );
      }
      // a block may have committed it while the checks above were awaited
      if (await this.chain.isCommitted(stx.hash)) {
        throw refusal(
          "TX_ALREADY_COMMITTED",
          `transaction ${id} was already committed; a signed transaction runs once`,
        );
      }
      const now = Date.now();
      // an idle pool says nothing about what the chain can commit: the estimate neither decays
      // nor averages over the time nothing waited (after a pause, a burst is admitted at the
      // rate last measured, not at minQueue)
      if (this.pending.size === 0) this.rateAt = Math.max(this.rateAt, now);
      this.pending.set(id, { tx: stx, sender, announcedAt: now, admittedAt: now });
      this.perSender.set(sender, (this.perSender.get(sender) ?? 0) + 1);
      this.totalBytes += bytes.byteLength;
      return { stx, sender };
    } finally {
      const waiters = this.inFlight.get(id);
      this.inFlight.delete(id);
      if (waiters) for (const w of waiters) w();
    }
  }

  private busy(): CustosError {
    if (this.pending.size >= this.opts.maxTxs) return full();
    return refusal(
      "TX_POOL_FULL",
      `the chain is busy: ${this.pending.size} transactions are waiting (about ${this.opts.queueSeconds} s of what it commits, the oldest for ${Math.round(this.oldestWaitMs())} ms); retry shortly`,
      { retryable: true },
    );
  }

  /**
   * Up to `max` transactions valid for a block at `height`, in arrival order. Transactions whose
   * blockLimit no longer admits them are dropped here.
   */
  take(max: number, height: number): SignedTx[] {
    const out: SignedTx[] = [];
    const expired: string[] = [];
    for (const [id, e] of this.pending) {
      if (e.tx.tx.blockLimit < height) {
        expired.push(id);
        continue;
      }
      out.push(e.tx);
      if (out.length >= max) break;
    }
    for (const id of expired) this.removeId(id);
    if (expired.length > 0) this.log.debug("expired transactions dropped", { count: expired.length, height });
    return out;
  }

  /**
   * Pending transactions not announced to the peers for `minAgeMs`, oldest first, at most `max`,
   * marked as announced now: a peer that was down, paused or cut off when one was gossiped would
   * otherwise never get it, and a view it leads could not propose it.
   */
  dueForAnnouncement(now: number, max: number, minAgeMs: number): SignedTx[] {
    const out: SignedTx[] = [];
    for (const e of this.pending.values()) {
      if (out.length >= max) break;
      if (now - e.announcedAt < minAgeMs) continue;
      e.announcedAt = now;
      out.push(e.tx);
    }
    return out;
  }

  /** Takes committed (or expired) transactions out; committed ones feed the throughput estimate. */
  remove(txs: readonly SignedTx[], committed = true): void {
    for (const t of txs) this.removeId(toHex(t.hash));
    if (!committed || txs.length === 0) return;
    const now = Date.now();
    const dt = Math.max(1, now - this.rateAt);
    // an exponentially weighted rate with a ~5 s horizon
    const w = Math.exp(-dt / 5000);
    this.rate = this.rate * w + (txs.length / (dt / 1000)) * (1 - w);
    this.rateAt = now;
  }

  private removeId(id: string): void {
    const e = this.pending.get(id);
    if (e === undefined) return;
    this.pending.delete(id);
    this.totalBytes -= e.tx.bytes.byteLength;
    const n = (this.perSender.get(e.sender) ?? 1) - 1;
    if (n <= 0) this.perSender.delete(e.sender);
    else this.perSender.set(e.sender, n);
  }
}
