import type { VerifierPool, VerifyItem } from "@custos/crypto";
import {
  type Block,
  blockRuleViolation,
  type CommitCertificate,
  commitVoteBytes,
  decodeCertificate,
  type Genesis,
  verifyCommitCertificate,
} from "@custos/types";
import {
  bytesEqual,
  CustosError,
  errorMessage,
  isCustosError,
  type Logger,
  sleep,
  toHex,
} from "@custos/utils";
import { crashPoint } from "../crashPoint.js";
import type { Executor } from "../execution/executor.js";
import type { Ledger } from "../ledger/ledger.js";
import type { GossipVerdict, NetworkPeer } from "../p2p/network.js";
import { buildBlock, commitOf } from "./blockBuilder.js";
import type { ChainWriter } from "./chainWriter.js";
import type { CommittedBlock } from "./pbftDriver.js";
import {
  decodeSyncBlock,
  decodeSyncHead,
  encodeSyncRequest,
  MAX_BLOCKS_ANSWER_BYTES,
  RANGE,
  type SnapshotSource,
  serveSync,
  type TxSource,
} from "./syncProtocol.js";

/** Ranges in flight. */
const IN_FLIGHT = 4;
/** How long a peer that timed out or dropped is left alone by sync. */
const BACKOFF_MS = 30_000;

/** The network as block sync sees it. */
export interface SyncNetwork {
  connectedPeers(): NetworkPeer[];
  /** Sends one request, reads up to `maxFrames` frames; aborted (SYNC_TIMEOUT) by `signal`. */
  request(
    index: number,
    request: Uint8Array,
    maxFrames: number,
    o: { signal: AbortSignal; maxBytes?: number },
  ): Promise<Uint8Array[]>;
  disconnect(index: number): Promise<void>;
}

export interface BlockSyncOptions {
  genesis: Genesis;
  ledger: Ledger;
  executor: Executor;
  verifier: VerifierPool;
  writer: ChainWriter;
  log: Logger;
  /** Sync once this many blocks behind the best peer... */
  lagBlocks: number;
  /** ...for this long (consensus catches up small gaps by itself). */
  graceMs: number;
  pollMs?: number;
  /** The node's root signal: aborting it stops sync's requests. */
  signal?: AbortSignal;
  /** Pending transactions by hash, for peers assembling a proposal (`txs` requests). */
  pendingTx?: TxSource;
  /** This node's state snapshots, served to peers that join from one. */
  snapshots?: SnapshotSource;
  /** This node's vital signs, encoded (health.ts), for peers that ask. */
  health?: () => Promise<Uint8Array>;
  onApplied(c: CommittedBlock): void;
  /** The ledger could not be written, or executing a certified block gave another result. */
  onFatal(err: Error): void;
}

/** Why a range from a peer failed: its fault (it is disconnected), or it has no such blocks yet. */
export type SyncErrorCode = "SYNC_PEER_FAULT" | "SYNC_NOT_YET" | "STATE_DIVERGED" | "NODE_STOPPING";

function peerFault(peer: number, message: string): CustosError<SyncErrorCode> {
  return new CustosError<SyncErrorCode>("SYNC_PEER_FAULT", message, { peer });
}

/** The peer does not have the range (yet): not a fault. */
function notYet(peer: number): CustosError<SyncErrorCode> {
  return new CustosError<SyncErrorCode>("SYNC_NOT_YET", "has no blocks from there yet", { peer });
}

/** Errors that decoding a block or certificate throws (codes of the codec and the types package). */
function isDecodeFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "string" && /^(DECODE|BLOCK|CERT)_/.test(code);
}

/** The peer sent something invalid: a fault, or undecodable data. */
function isFault(err: unknown): boolean {
  return isCustosError(err, "SYNC_PEER_FAULT") || isDecodeFailure(err);
}

interface Fetched {
  peer: number;
  from: number;
  count: number;
  /** certOk: whether the certificate verified against the set `setHash` names. */
  items?: { block: Block; bytes: Uint8Array; cert: CommitCertificate; certOk: boolean }[];
  /** The validator set the certificates were checked against (the head's when fetched). */
  setHash?: Uint8Array;
  error?: Error;
}

/**
 * Block sync: a node that is behind (new, restarted, partitioned, or an observer) fetches ranges
 * of blocks with their commit certificates from several peers at once, checks every certificate
 * (a quorum of validator signatures over the block hash), every transaction signature and the
 * block rules, executes each block and compares the header it gets with the certified one
 * (state, tx and receipt roots), and only then stores it. A peer that serves anything invalid is
 * disconnected and its range is fetched elsewhere. Peers' heights come from block announcements
 * (gossip: the commit certificate of each new block) and from asking connected peers.
 */
export class BlockSync {
  private readonly heights = new Map<number, number>();
  /** Peers' lowest blocks (they started from a snapshot or prune): ranges below are not asked of them. */
  private readonly bases = new Map<number, number>();
  private readonly backoff = new Map<number, number>();
  private running = false;
  private stopped = true;
  private behindSince: number | undefined;
  private behindAtHead = -1;
  private timer: NodeJS.Timeout | undefined;
  private lastPoll = 0;
  /** Aborts every request in flight at stop; a child of the node's root signal. */
  private readonly controller = new AbortController();
  private readonly signal: AbortSignal;
  private runs: Promise<void> = Promise.resolve();
  private net: SyncNetwork | undefined;
  /** Blocks stored by sync since start. */
  applied = 0;

  constructor(private readonly o: BlockSyncOptions) {
    this.signal = o.signal ? AbortSignal.any([o.signal, this.controller.signal]) : this.controller.signal;
  }

  /**
   * The set that signs the next block. Blocks are checked and applied in order, so each
   * certificate is checked against the set that the block before it left in the state.
   */
  private get validators(): Uint8Array[] {
    return this.o.ledger.head.validators.map((v) => v.publicKey);
  }

  /** How many peers have told this node their height. */
  get peersHeard(): number {
    return this.heights.size;
  }

  /** The height each peer (by index) last showed it has, from its announcements and answers. */
  peerHeight(index: number): number | undefined {
    return this.heights.get(index);
  }

  /** Highest height some peer has shown it has. */
  get target(): number {
    return Math.max(this.o.ledger.head.height, ...this.heights.values());
  }

  get syncing(): boolean {
    return this.running;
  }

  start(net: SyncNetwork): void {
    this.net = net;
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      // ask often until some peer has answered (just started), then every pollMs
      const every = this.heights.size === 0 ? 500 : (this.o.pollMs ?? 3000);
      if (Date.now() - this.lastPoll >= every) {
        this.lastPoll = Date.now();
        void this.pollHeads();
      }
      this.check();
      this.timer = setTimeout(tick, 500);
      this.timer.unref();
    };
    tick();
  }

  /** Stops polling, aborts what is in flight and waits for a range being stored to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller.abort(new CustosError<SyncErrorCode>("NODE_STOPPING", "the node is stopping"));
    await this.runs;
  }

  /** Gossip handler for block announcements (a block's commit certificate). */
  async onAnnouncement(from: NetworkPeer, data: Uint8Array): Promise<GossipVerdict> {
    let cert: CommitCertificate;
    try {
      cert = decodeCertificate(data);
    } catch {
      return "reject";
    }
    if (cert.chainId !== this.o.genesis.chainId) return "reject";
    if (cert.height <= this.o.ledger.head.height || cert.height <= (this.heights.get(from.index) ?? 0))
      return "ignore"; // old news: neither checked nor relayed
    if (!(await this.certificateValid(cert))) {
      // checked against the head's validator set: exact for the next block; further ahead the
      // set may have changed in between, so such a certificate is left aside, not held against the peer
      return cert.height === this.o.ledger.head.height + 1 ? "reject" : "ignore";
    }
    this.heights.set(from.index, cert.height);
    this.check();
    return "accept";
  }

  private async certificateValid(cert: CommitCertificate): Promise<boolean> {
    let items: VerifyItem[];
    try {
      items = this.certificateItems(cert, cert);
    } catch {
      return false;
    }
    return (await this.o.verifier.verifyBatch(items)).every(Boolean);
  }

  /**
   * Checks a certificate's shape against what it should certify (chain, height, block hash, a
   * quorum of known validators; throws CERT_INVALID) and returns its signatures to verify, so
   * that callers can verify many certificates in one batch on the pool.
   */
  private certificateItems(
    cert: CommitCertificate,
    expected: { chainId: string; height: number; blockHash: Uint8Array },
  ): VerifyItem[] {
    verifyCommitCertificate(cert, expected, this.validators, () => true);
    const message = commitVoteBytes(cert.chainId, cert.height, cert.view, cert.blockHash);
    return cert.signatures.map((s) => ({
      publicKey: this.validators[s.validator] as Uint8Array,
      message,
      signature: s.signature,
    }));
  }

  /** Answers a peer's sync request from the ledger (syncProtocol.ts). */
  serve(_from: NetworkPeer, request: Uint8Array): AsyncGenerator<Uint8Array> {
    return serveSync(this.o.ledger, request, this.o.pendingTx, this.o.snapshots, this.o.health);
  }

  private async pollHeads(): Promise<void> {
    const net = this.net;
    if (!net) return;
    await Promise.all(
      net
        .connectedPeers()
        .filter((p) => !this.backedOff(p.index))
        .map(async (p) => {
          try {
            const [frame] = await net.request(p.index, encodeSyncRequest({ kind: "head" }), 1, {
              signal: AbortSignal.any([this.signal, AbortSignal.timeout(5000)]),
              maxBytes: 128,
            });
            const { height, base } = decodeSyncHead(frame);
            // a claim, not proof: a peer that claims more than it serves is found out by the fetch
            this.heights.set(p.index, height);
            this.bases.set(p.index, base);
          } catch (err) {
            this.o.log.debug("head query failed", { peer: p.index, error: errorMessage(err) });
          }
        }),
    );
    this.check();
  }

  private check(): void {
    if (this.running || this.stopped) return;
    const gap = this.target - this.o.ledger.head.height;
    if (gap < this.o.lagBlocks) {
      this.behindSince = undefined;
      return;
    }
    // the grace runs while the head stands still: a node that is behind but committing (by
    // consensus) is left to it
    const head = this.o.ledger.head.height;
    if (this.behindSince === undefined || head !== this.behindAtHead) {
      this.behindSince = Date.now();
      this.behindAtHead = head;
    }
    if (Date.now() - this.behindSince < this.o.graceMs) return;
    this.running = true;
    // an operator sees in node.log when this node fetched blocks instead of voting (a validator
    // past its grace) or caught up a long way; following the chain a block at a time is routine
    const say =
      gap >= 16 || this.o.graceMs > 0 ? this.o.log.info.bind(this.o.log) : this.o.log.debug.bind(this.o.log);
    const appliedBefore = this.applied;
    const startedAt = Date.now();
    say("block sync started", { head, target: this.target, behind: gap });
    this.runs = this.run()
      .then(() => {
        const h = this.o.ledger.head.height;
        const seconds = (Date.now() - startedAt) / 1000;
        const blocks = this.applied - appliedBefore;
        // a run that stops short (a shorter answer, a peer let go) is followed by another: not news
        (h >= this.target ? say : this.o.log.debug.bind(this.o.log))("block sync finished", {
          head: h,
          target: this.target,
          caughtUp: h >= this.target,
          blocks,
          seconds,
          blocksPerSecond: seconds > 0 ? Math.round(blocks / seconds) : blocks,
        });
      })
      .catch((err: Error) => {
        if (this.stopped && this.signal.aborted) return; // stopping: requests in flight were aborted
        this.stopped = true;
        this.o.log.error("block sync stopped", { error: errorMessage(err) });
        this.o.onFatal(err);
      })
      .finally(() => {
        this.running = false;
        this.behindSince = undefined;
      });
  }

  private async run(): Promise<void> {
    let idle = 0;
    while (!this.stopped && this.o.ledger.head.height < this.target && idle < 3) {
      const before = this.o.ledger.head.height;
      await this.round();
      idle = this.o.ledger.head.height > before ? 0 : idle + 1;
      if (idle > 0) await sleep(500, { signal: this.signal }).catch(() => {});
    }
  }

  /** Peers that have `height`, rotating so that consecutive ranges go to different peers. */
  private peerFor(height: number, k: number): number | undefined {
    const connected = new Set(this.net?.connectedPeers().map((p) => p.index));
    const have = [...this.heights]
      .filter(
        ([p, h]) =>
          h >= height && (this.bases.get(p) ?? 0) <= height && connected.has(p) && !this.backedOff(p),
      )
      .map(([p]) => p);
    return have.length ? have[k % have.length] : undefined;
  }

  /** Fetches ranges from several peers in parallel (a window of IN_FLIGHT) and applies them in order. */
  private async round(): Promise<void> {
    const inflight = new Map<number, Promise<Fetched>>();
    let next = this.o.ledger.head.height + 1;
    let k = 0;
    const launch = () => {
      const target = this.target;
      while (inflight.size < IN_FLIGHT && next <= target) {
        const from = next;
        const count = Math.min(RANGE, target - from + 1);
        const peer = this.peerFor(from, k++);
        if (peer === undefined) return;
        inflight.set(from, this.fetch(peer, from, count));
        next += count;
      }
    };
    launch();
    let at = this.o.ledger.head.height + 1;
    try {
      while (!this.stopped && inflight.has(at)) {
        const f = (await inflight.get(at)) as Fetched;
        inflight.delete(at);
        if (f.error) {
          this.blame(f.peer, f.error);
          return;
        }
        const n = await this.apply(f);
        at += n;
        if (n < f.count) return; // a shorter answer (a byte cap, or a block refused): go on from the new head
        launch();
      }
    } finally {
      // ranges not reached: a peer already caught serving something invalid is still let go
      for (const f of await Promise.all(inflight.values()))
        if (isFault(f.error)) this.blame(f.peer, f.error as Error);
    }
  }

  private backedOff(peer: number): boolean {
    return (this.backoff.get(peer) ?? 0) > Date.now();
  }

  /**
   * A range failed. Invalid data: the peer is disconnected. No such blocks yet (a relayer of an
   * announcement need not have the block): its height is taken as ours. Not connected or too
   * slow: it is left alone for BACKOFF_MS, its head claims included.
   */
  private blame(peer: number, err: Error): void {
    if (isCustosError(err, "SYNC_NOT_YET")) {
      this.heights.set(peer, this.o.ledger.head.height);
      return;
    }
    this.heights.delete(peer);
    if (isFault(err)) {
      this.o.log.warn("sync peer served invalid data; disconnecting", { peer, reason: err.message });
      void this.net?.disconnect(peer);
    } else {
      this.backoff.set(peer, Date.now() + BACKOFF_MS);
      this.o.log.debug("sync request failed", { peer, error: errorMessage(err) });
    }
  }

  private async fetch(peer: number, from: number, count: number): Promise<Fetched> {
    try {
      const net = this.net as SyncNetwork;
      let frames: Uint8Array[];
      try {
        frames = await net.request(peer, encodeSyncRequest({ kind: "blocks", from, count }), count, {
          signal: AbortSignal.any([this.signal, AbortSignal.timeout(60_000)]),
          maxBytes: MAX_BLOCKS_ANSWER_BYTES,
        });
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === "SYNC_UNAVAILABLE" || code === "SYNC_TIMEOUT") throw err;
        throw peerFault(peer, errorMessage(err)); // over the limits, or broken framing
      }
      if (frames.length === 0) throw notYet(peer);
      const items = frames.map((frame, i) => {
        const item = decodeSyncBlock(frame);
        if (item.block.header.height !== from + i)
          throw peerFault(peer, `sent height ${item.block.header.height} for ${from + i}`);
        return item;
      });
      const setHash = this.o.ledger.head.validatorSetHash;
      const certOk = await this.verifySignatures(peer, items);
      return {
        peer,
        from,
        count,
        items: items.map((x, i) => ({ ...x, certOk: certOk[i] as boolean })),
        setHash,
      };
    } catch (err) {
      // anything undecodable (a tx root that does not match, say) is the peer's fault
      const e = isDecodeFailure(err) ? peerFault(peer, errorMessage(err)) : (err as Error);
      return { peer, from, count, error: e };
    }
  }

  /**
   * Every certificate (quorum over the block hash) and every tx signature, in one batch on the
   * pool; returns which certificates verified. They are checked against the head's validator
   * set, which is the right one for the next block; further ahead the set may change on the
   * way, so a certificate that fails there is judged again when its block is next (apply). A bad
   * tx signature, or a bad certificate for the next block, is the peer's fault at once.
   */
  private async verifySignatures(
    peer: number,
    items: { block: Block; cert: CommitCertificate }[],
  ): Promise<boolean[]> {
    const batch: VerifyItem[] = [];
    const spans: { cert: [number, number] | undefined; txs: [number, number] }[] = [];
    for (const { block, cert } of items) {
      let certSpan: [number, number] | undefined;
      try {
        const c = this.certificateItems(cert, {
          chainId: this.o.genesis.chainId,
          height: block.header.height,
          blockHash: block.hash,
        });
        certSpan = [batch.length, batch.length + c.length];
        batch.push(...c);
      } catch {
        certSpan = undefined;
      }
      const t0 = batch.length;
      for (const t of block.txs)
        batch.push({ publicKey: t.tx.sender, message: t.body, signature: t.signature });
      spans.push({ cert: certSpan, txs: [t0, batch.length] });
    }
    const ok = await this.o.verifier.verifyBatch(batch);
    const all = (r: [number, number]) => ok.slice(r[0], r[1]).every(Boolean);
    return items.map(({ block }, i) => {
      const span = spans[i] as (typeof spans)[number];
      if (!all(span.txs)) throw peerFault(peer, `a bad tx signature in block ${block.header.height}`);
      const certOk = span.cert !== undefined && all(span.cert);
      if (!certOk && block.header.height === this.o.ledger.head.height + 1)
        throw peerFault(peer, `block ${block.header.height} has no valid certificate`);
      return certOk;
    });
  }

  /** Executes and stores a fetched range in order; returns how many blocks it covered. */
  private async apply(f: Fetched): Promise<number> {
    const items = f.items ?? [];
    return this.o.writer.exclusive(async () => {
      let n = 0;
      for (const { block, bytes, cert, certOk } of items) {
        const head = this.o.ledger.head;
        const h = block.header.height;
        if (h <= head.height) {
          n++; // consensus got there first
          continue;
        }
        // the block is next now: its certificate is judged against exactly the set that signs it
        const valid = bytesEqual(head.validatorSetHash, f.setHash as Uint8Array)
          ? certOk
          : (await this.verifySignatures(f.peer, [{ block, cert }]).catch(() => [false]))[0];
        if (!valid) {
          this.blame(f.peer, peerFault(f.peer, `block ${h} has no valid certificate`));
          return n;
        }
        const why = blockRuleViolation(this.o.genesis, head, block, (t) =>
          this.o.ledger.isRecentlyCommitted(t),
        );
        if (why) {
          this.blame(f.peer, peerFault(f.peer, `block ${h}: ${why}`));
          return n;
        }
        const built = await buildBlock(this.o.genesis.chainId, head, block.txs, {
          timestamp: block.header.timestamp,
          proposer: block.header.proposer,
          view: block.header.view,
          executor: this.o.executor,
          state: this.o.ledger,
        });
        if (!bytesEqual(built.block.hash, block.hash)) {
          // a quorum certified this block, and executing it here gives another header: this
          // node's state is not the chain's; going on would serve wrong answers
          throw new CustosError<SyncErrorCode>(
            "STATE_DIVERGED",
            `block ${h} (0x${toHex(block.hash)}) is certified but executes to 0x${toHex(built.block.hash)} here`,
          );
        }
        if (n > 0) crashPoint("sync.store.midRange");
        await this.o.ledger.commit(commitOf(built, cert, bytes));
        this.applied++;
        n++;
        this.o.onApplied({ block: built.block, receipts: built.receipts, certificate: cert });
      }
      return n;
    });
  }
}
