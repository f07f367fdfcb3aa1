import { EventEmitter } from "node:events";
import { merkleRoot } from "@custos/codec";
import { type Effect, type Input, PbftEngine, sm2ConsensusCrypto, type Wal } from "@custos/consensus";
import type { Sm2KeyPair, VerifierPool } from "@custos/crypto";
import {
  type Block,
  blockRuleViolation,
  type CommitCertificate,
  type Genesis,
  LIMITS,
  type Receipt,
  type SignedTx,
} from "@custos/types";
import { bytesEqual, errorMessage, type Logger, toHex } from "@custos/utils";
import type { SignState } from "../consensus/signState.js";
import { crashPoint } from "../crashPoint.js";
import type { Executor } from "../execution/executor.js";
import type { Ledger } from "../ledger/ledger.js";
import type { TxPool } from "../txpool/txpool.js";
import { type BuiltBlock, buildBlock, commitOf } from "./blockBuilder.js";
import { decodeProposal, encodeProposal, type Proposal } from "./proposal.js";
import type { ProposalTxs } from "./proposalTxs.js";

export interface CommittedBlock {
  block: Block;
  receipts: Receipt[];
  certificate: CommitCertificate;
}

/**
 * Execution time a block may take on this node, as a share of the base view timeout (see
 * blockCap): 500 ms of a 3 s timeout.
 */
const BLOCK_EXEC_SHARE_OF_TIMEOUT = 1 / 6;

/** What a replica fetched of a proposal its pool lacked, and how long that took (ms). */
interface Fetched {
  txs: number;
  ms: number;
}

export interface ChainEvents {
  "block:committed": [CommittedBlock];
  /** An unrecoverable local fault (ledger or WAL write): block production has stopped. */
  "chain:failed": [Error];
}

export interface PbftDriverOptions {
  genesis: Genesis;
  baseTimeoutMs: number;
  maxTimeoutMs: number;
  /** A proposal timestamped further ahead of this node's clock is refused (default 10 s). */
  maxClockDriftMs?: number;
  /** This node's clock, for block times (tests give a wrong one; default Date.now). */
  now?: () => number;
}

/** Where consensus messages go: the network's consensus channel (nowhere on a one-validator chain). */
export interface ConsensusTransport {
  send(e: Extract<Effect, { type: "broadcast" | "send" }>): void;
  /** A peer sent something invalid (the network hangs up on it). */
  penalize(peer: number, reason: string): void;
  /** Transactions by hash from peers, `from` first (exact signed bytes; what nobody has is left out). */
  fetchTxs(hashes: Uint8Array[], from: number): Promise<SignedTx[]>;
  /**
   * Sends now the transactions this node's clients gave it that wait for the next gossip batch:
   * a proposal names its transactions by hash, and a replica that lacks one fetches it on the
   * round's critical path.
   */
  flushTxs?(): void;
}

/** What the driver works with (js-libp2p style components: tests hand in their own). */
export interface PbftDriverModules {
  ledger: Ledger;
  executor: Executor;
  pool: TxPool;
  verifier: VerifierPool;
  wal: Wal;
  signState: SignState;
  key: Sm2KeyPair;
  transport: ConsensusTransport;
  log: Logger;
  /** Where a proposed block's transactions are kept until the next block (a crash empties the pool). */
  proposalTxs?: ProposalTxs;
}

/**
 * Hosts the PBFT engine inside the node: carries out its effects in order, one input at a time.
 * Persist goes to the disk WAL (fdatasync) before anything after it; a proposal is built from
 * the pool after the minimum block interval; a block proposed by another replica is executed and
 * is valid only if re-executing it reproduces its header exactly (roots included); a decision is
 * written to the ledger with its certificate of commit signatures. Messages to other validators
 * go through `transport`, which the network provides (issue 5); a one-validator chain has no one
 * to send to.
 */
export class PbftDriver extends EventEmitter<ChainEvents> {
  private engine: PbftEngine;
  /** This node's index in the current validator set; -1 while it is not in it. */
  private self: number;
  private keysFor: { hash: Uint8Array; keys: Uint8Array[] } | undefined;
  /** The validator set the current engine was made for. */
  private engineSet: Uint8Array;
  private readonly built = new Map<string, BuiltBlock>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private queue: Promise<void> = Promise.resolve();
  private stopped = true;
  private workQueued = false;
  /** Views moved past at some height, since start. */
  viewChanges = 0;
  /** When the current run of view changes began (undefined while blocks commit in view 0). */
  private viewChangeSince: number | undefined;
  /** Proposals of others this replica refused to prepare (rules, signatures, execution). */
  proposalsRefused = 0;
  /** Building (executing) one transaction, ms, exponentially weighted: what caps a block. */
  private execMsPerTx = 0;
  /**
   * Where the round of the block being decided spent its time (the "block committed" log line):
   * when this node built or received its proposal, and how long executing it took.
   */
  private round: { hash: string; startedAt: number; executeMs: number; fetch?: Fetched } | undefined;

  /**
   * How many transactions the next block may take: genesis's maxBlockTxs, and no more than this
   * node executes in a sixth of the base view timeout (every validator executes the block again
   * before it votes, so a round is twice that plus the messages, the votes and the commit, about
   * half the timeout): under overload blocks stay small enough for a round to end well inside
   * the view timeout, instead of growing with the backlog into rounds that time out and grow the
   * backlog further. Not smaller than that: each round has a cost of its own (the votes, the
   * commit and its fsync, the indexes), which bigger blocks share; a quarter-second cap measured
   * ~400 transfers/s on four validators where the chain does ~500.
   */
  private blockCap(): number {
    const max = this.genesis.consensus.maxBlockTxs;
    if (this.execMsPerTx <= 0) return Math.min(max, 1000);
    const targetMs = this.opts.baseTimeoutMs * BLOCK_EXEC_SHARE_OF_TIMEOUT;
    return Math.max(100, Math.min(max, Math.floor(targetMs / this.execMsPerTx)));
  }

  private measureExecution(txs: number, ms: number): void {
    if (txs < 20) return; // too few to say much per transaction
    const perTx = ms / txs;
    this.execMsPerTx = this.execMsPerTx === 0 ? perTx : this.execMsPerTx * 0.7 + perTx * 0.3;
  }

  /** Transactions of proposals this replica fetched from peers (its pool lacked them). */
  fetchedTxs = 0;
  /** Votes the sign guard refused (each one would have been equivocation). */
  refusedVotes = 0;
  private readonly genesis: Genesis;
  private readonly proposalTxs: ProposalTxs | undefined;
  private readonly ledger: Ledger;
  private readonly executor: Executor;
  private readonly pool: TxPool;
  private readonly verifier: VerifierPool;
  private readonly wal: Wal;
  private readonly signState: SignState;
  private readonly key: Sm2KeyPair;
  private readonly transport: ConsensusTransport;
  private readonly log: Logger;
  private readonly onAdded = () => {
    // one "work" input per burst of admissions, not one per transaction
    if (this.workQueued) return;
    this.workQueued = true;
    this.input({ type: "work" });
  };

  constructor(
    private readonly opts: PbftDriverOptions,
    modules: PbftDriverModules,
  ) {
    super();
    this.genesis = opts.genesis;
    ({
      ledger: this.ledger,
      executor: this.executor,
      pool: this.pool,
      verifier: this.verifier,
      wal: this.wal,
      signState: this.signState,
      key: this.key,
      transport: this.transport,
      log: this.log,
    } = modules);
    this.proposalTxs = modules.proposalTxs;
    this.engineSet = this.ledger.head.validatorSetHash;
    this.self = this.indexOfSelf();
    this.engine = this.newEngine(Math.max(0, this.self));
    this.pool.on("tx:added", this.onAdded);
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  /** The public keys of the set that validates the next block (cached per set). */
  private get validators(): Uint8Array[] {
    const head = this.ledger.head;
    if (this.keysFor === undefined || !bytesEqual(this.keysFor.hash, head.validatorSetHash)) {
      this.keysFor = { hash: head.validatorSetHash, keys: head.validators.map((v) => v.publicKey) };
    }
    return this.keysFor.keys;
  }

  private indexOfSelf(): number {
    return this.validators.findIndex((pk) => bytesEqual(pk, this.key.publicKey));
  }

  private newEngine(self: number): PbftEngine {
    return new PbftEngine(
      {
        chainId: this.genesis.chainId,
        self,
        baseTimeoutMs: this.opts.baseTimeoutMs,
        maxTimeoutMs: this.opts.maxTimeoutMs,
        maxViewAhead: 64,
        maxMessageBytes: LIMITS.maxBlockBytes + 1024 * 1024,
        keepDecisions: 16,
      },
      sm2ConsensusCrypto({ privateKey: this.key.privateKey, validators: () => this.validators }),
      this.signState,
    );
  }

  /** Whether this node is in the current validator set (and so takes part in consensus). */
  get active(): boolean {
    return this.self >= 0;
  }

  /**
   * The ledger advanced to a new head: go on above it. When the block changed the validator set
   * and this node's place in it, consensus restarts with the new index (or pauses, when this node
   * is no longer a validator: block sync keeps it up to date).
   */
  private async advance(height: number): Promise<void> {
    const self = this.indexOfSelf();
    const setHash = this.ledger.head.validatorSetHash;
    const changed = !bytesEqual(setHash, this.engineSet);
    if (changed || self !== this.self) {
      // A new set: a new engine, so that nothing buffered for the next height (messages, decisions
      // checked against the old set, with the old connection indices) carries over.
      this.log.info("validator set changed", { height, self, validators: this.validators.length });
      this.engineSet = setHash;
      this.self = self;
      if (self < 0) {
        for (const t of this.timers) clearTimeout(t);
        this.timers.clear();
        return;
      }
      this.engine = this.newEngine(self);
      await this.run({ type: "start", height: height + 1, validators: this.validators.length, wal: [] });
      return;
    }
    if (self < 0) return;
    await this.run({ type: "committed", height, validators: this.validators.length });
  }

  /** The view consensus is in at the current height. */
  get view(): number {
    return this.engine.state.view;
  }

  start(): void {
    this.stopped = false;
    const records = this.wal.readAll();
    this.input({
      type: "start",
      height: this.ledger.head.height + 1,
      validators: this.validators.length,
      wal: records,
    });
    if (this.pool.size > 0) this.input({ type: "work" });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pool.off("tx:added", this.onAdded);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.queue;
  }

  /**
   * Runs `fn` (block sync writing certified blocks) between two consensus steps, so that only
   * one writer touches the ledger at a time; afterwards consensus goes on above the new head.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(async () => {
      const before = this.ledger.head.height;
      const result = await fn();
      const after = this.ledger.head.height;
      if (after > before && !this.stopped) {
        this.built.clear();
        await this.wal.compact([]);
        await this.advance(after);
        if (this.pool.size > 0) await this.run({ type: "work" });
      }
      return result;
    });
    this.queue = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /** A message from a peer (the network hands them in here). */
  receive(bytes: Uint8Array, from?: number): void {
    this.input({ type: "message", bytes, ...(from === undefined ? {} : { from }) });
  }

  private input(i: Input): void {
    this.queue = this.queue
      .then(() => this.run(i))
      .catch((err: Error) => {
        if (this.stopped) return;
        this.stopped = true;
        this.log.error("consensus stopped after a local fault", { error: errorMessage(err) });
        this.emit("chain:failed", err);
      });
  }

  private async run(i: Input): Promise<void> {
    if (this.stopped || this.self < 0) return;
    if (i.type === "work") this.workQueued = false;
    const before = this.engine.state;
    const effects = this.engine.step(i);
    const after = this.engine.state;
    if (after.height === before.height && after.view > before.view) {
      this.viewChanges += after.view - before.view;
      this.viewChangeSince ??= Date.now();
      this.log.warn("view change", {
        height: after.height,
        view: after.view,
        leader: this.engine.leaderOf(after.height, after.view),
        reason: i.type === "timer" ? "timeout" : "peers moved on",
      });
    }
    for (const e of effects) await this.effect(e);
  }

  private later(delayMs: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, delayMs);
    this.timers.add(t);
  }

  private async effect(e: Effect): Promise<void> {
    switch (e.type) {
      case "persist":
        // the vote and the sign-state record, both durable before the vote leaves
        await Promise.all([this.wal.append(e.record), this.signState.persist(e.vote)]);
        crashPoint("consensus.persist.beforeSend");
        return;
      case "refused":
        this.refusedVotes++;
        this.log.error("refused to sign a vote that conflicts with one this validator signed before", {
          height: e.vote.height,
          view: e.vote.view,
          phase: e.vote.phase,
          block: `0x${toHex(e.digest)}`,
          lastSigned: this.signState.describe(),
        });
        return;
      case "broadcast":
      case "send":
        this.transport.send(e);
        return;
      case "setTimer":
        this.later(e.delayMs, () =>
          this.input({ type: "timer", height: e.height, view: e.view, kind: e.kind }),
        );
        return;
      case "requestProposal": {
        // the minimum block interval runs from the last block's time, whoever proposed it (a
        // leader's own last proposal is n blocks old when validators take turns)
        const wait = Math.max(
          0,
          this.ledger.head.header.timestamp + this.genesis.consensus.minBlockIntervalMs - this.now(),
        );
        this.later(wait, () => {
          this.queue = this.queue
            .then(() => this.propose(e.height, e.view))
            .catch((err: Error) => {
              this.stopped = true;
              this.emit("chain:failed", err);
            });
        });
        return;
      }
      case "execute": {
        // the transactions a replica lacks are fetched off the consensus queue, so that a slow or
        // absent peer does not hold up other messages; the check itself runs in the queue
        const mine = this.built.get(toHex(e.blockHash));
        if (mine) {
          await this.run({ type: "executed", height: e.height, blockHash: e.blockHash, valid: true });
          return;
        }
        const leader = this.engine.leaderOf(e.height, e.view);
        const receivedAt = performance.now();
        void this.assemble(e.block, leader).then(({ block: assembled, fetch }) => {
          this.queue = this.queue
            .then(async () => {
              const started = performance.now();
              const valid = assembled !== undefined && (await this.verifyProposal(assembled, e.blockHash));
              this.round = {
                hash: toHex(e.blockHash),
                startedAt: receivedAt,
                executeMs: performance.now() - started,
                ...(fetch ? { fetch } : {}),
              };
              await this.run({ type: "executed", height: e.height, blockHash: e.blockHash, valid });
            })
            .catch((err: Error) => {
              if (this.stopped) return;
              this.stopped = true;
              this.log.error("consensus stopped after a local fault", { error: errorMessage(err) });
              this.emit("chain:failed", err);
            });
        });
        return;
      }
      case "commit":
        await this.commit(e);
        return;
      case "invalid":
        this.log.warn("invalid consensus input", { from: e.from, reason: e.reason });
        if (e.from !== undefined) this.transport.penalize(e.from, e.reason);
        return;
    }
  }

  private async propose(height: number, view: number): Promise<void> {
    if (this.stopped || height !== this.ledger.head.height + 1) return;
    const taken = this.pool.take(this.blockCap(), height);
    // never propose what is already on chain (the pool and the ledger can race; others would refuse the block)
    const txs = taken.filter((t) => !this.ledger.isRecentlyCommitted(t.hash));
    if (txs.length < taken.length)
      this.pool.remove(
        taken.filter((t) => this.ledger.isRecentlyCommitted(t.hash)),
        false,
      );
    if (txs.length === 0) {
      // no empty blocks: the engine asks again when the pool has work
      await this.run({ type: "noProposal", height, view });
      return;
    }
    // ahead of the proposal, and verified by the replicas while this node executes the block
    this.transport.flushTxs?.();
    const head = this.ledger.head;
    const started = performance.now();
    const built = await buildBlock(this.genesis.chainId, head, txs, {
      timestamp: Math.max(this.now(), head.header.timestamp + 1),
      proposer: this.engine.leaderOf(height, view),
      view,
      executor: this.executor,
      state: this.ledger,
    });
    this.built.set(toHex(built.block.hash), built);
    this.measureExecution(txs.length, performance.now() - started);
    this.round = {
      hash: toHex(built.block.hash),
      startedAt: started,
      executeMs: performance.now() - started,
    };
    // on disk before the proposal leaves: after a crash of every validator, someone has them
    await this.proposalTxs?.save(built.block.txs);
    await this.run({
      type: "proposal",
      height,
      view,
      block: encodeProposal(
        built.block.headerBytes,
        built.block.txs.map((t) => t.hash),
      ),
    });
  }

  /**
   * A proposal's block, from the pool and, for what the pool lacks, from peers (the leader
   * first). Undefined when it cannot be assembled (malformed, a tx nobody serves, a tx that is not
   * the one named): the replica then does not prepare it.
   */
  private async assemble(payload: Uint8Array, leader: number): Promise<{ block?: Block; fetch?: Fetched }> {
    let p: Proposal;
    try {
      p = decodeProposal(payload);
    } catch (err) {
      this.log.warn("proposal rejected", { reason: errorMessage(err) });
      return {};
    }
    if (!bytesEqual(merkleRoot(p.txHashes), p.header.txRoot)) {
      this.log.warn("proposal rejected", {
        height: p.header.height,
        reason: "txRoot does not match its hashes",
      });
      return {};
    }
    const txs: (SignedTx | undefined)[] = p.txHashes.map((h) => this.pool.get(h));
    // the batch that carries the others may be in, its signatures still being verified
    const settling: Promise<void>[] = [];
    txs.forEach((t, i) => {
      if (t === undefined)
        settling.push(
          this.pool.settled(p.txHashes[i] as Uint8Array).then((s) => {
            txs[i] = s;
          }),
        );
    });
    if (settling.length > 0) await Promise.all(settling);
    let fetch: Fetched | undefined;
    const missing = p.txHashes.filter((_, i) => txs[i] === undefined);
    if (missing.length > 0) {
      const asked = performance.now();
      const got = await this.transport.fetchTxs(missing, leader).catch(() => [] as SignedTx[]);
      const byHash = new Map(got.map((t) => [toHex(t.hash), t]));
      p.txHashes.forEach((h, i) => {
        txs[i] ??= byHash.get(toHex(h));
      });
      this.fetchedTxs += byHash.size;
      fetch = { txs: byHash.size, ms: performance.now() - asked };
      const still = txs.filter((t) => t === undefined).length;
      if (still > 0) {
        this.log.warn("proposal rejected", {
          height: p.header.height,
          reason: `${still} of its transactions could not be fetched`,
        });
        return { fetch };
      }
    }
    return {
      block: { header: p.header, headerBytes: p.headerBytes, hash: p.hash, txs: txs as SignedTx[] },
      ...(fetch ? { fetch } : {}),
    };
  }

  /**
   * Execute-before-vote for a block this node did not build: it must extend our head, its
   * transactions must be validly signed (those not from the pool are verified now), unexpired
   * and not committed before, and executing them must reproduce the header exactly.
   */
  private async verifyProposal(b: Block, hash: Uint8Array): Promise<boolean> {
    const mine = this.built.get(toHex(hash));
    if (mine) return true;
    try {
      const head = this.ledger.head;
      const h = b.header;
      const why =
        blockRuleViolation(this.genesis, head, b, (t) => this.ledger.isRecentlyCommitted(t)) ??
        this.timeViolation(h.timestamp, head.header.timestamp);
      if (why) {
        this.proposalsRefused++;
        this.log.warn("proposal rejected", { height: h.height, reason: why });
        return false;
      }
      const unverified = b.txs.filter((t) => this.pool.get(t.hash) === undefined);
      const sigs = await this.verifier.verifyBatch(
        unverified.map((t) => ({ publicKey: t.tx.sender, message: t.body, signature: t.signature })),
      );
      if (sigs.some((ok) => !ok)) {
        this.proposalsRefused++;
        this.log.warn("proposal rejected", {
          height: h.height,
          reason: "a transaction's signature does not verify",
        });
        return false;
      }
      const started = performance.now();
      const rebuilt = await buildBlock(this.genesis.chainId, head, b.txs, {
        timestamp: h.timestamp,
        proposer: h.proposer,
        view: h.view,
        executor: this.executor,
        state: this.ledger,
        // assemble checked it against the proposal's hashes, and took each tx by its hash
        txRoot: h.txRoot,
      });
      this.measureExecution(b.txs.length, performance.now() - started);
      if (!bytesEqual(rebuilt.block.hash, hash)) {
        this.proposalsRefused++;
        this.log.warn("proposal rejected", { height: h.height, reason: "executing it gives another header" });
        return false;
      }
      this.built.set(toHex(hash), rebuilt);
      // a second copy besides the leader's; the vote does not wait for it
      this.proposalTxs
        ?.save(b.txs)
        .catch((err) =>
          this.log.warn("could not keep the proposal's transactions", { error: errorMessage(err) }),
        );
      return true;
    } catch (err) {
      this.log.warn("proposal rejected", { error: errorMessage(err) });
      return false;
    }
  }

  /**
   * Block time is what contracts see (card terms, cooling-off, expiry): one validator with a
   * clock ahead must not move it. A proposal further ahead of this node's clock than
   * maxClockDriftMs gets no vote, so a leader whose clock runs ahead loses its view and the next
   * one proposes (CometBFT's proposer-based timestamps ask the same of a proposal). Head time + 1
   * ms, the least a block may carry, is always accepted: a chain whose head is already ahead of
   * the clocks goes on.
   */
  private timeViolation(timestamp: number, headTimestamp: number): string | undefined {
    const now = this.now();
    const drift = this.opts.maxClockDriftMs ?? 10_000;
    if (timestamp <= headTimestamp + 1 || timestamp <= now + drift) return undefined;
    return `timestamp ${timestamp} is ${timestamp - now} ms ahead of this node's clock (consensus.maxClockDriftMs ${drift})`;
  }

  private async commit(e: Extract<Effect, { type: "commit" }>): Promise<void> {
    if (e.height <= this.ledger.head.height) return; // block sync stored it first
    const built = this.built.get(toHex(e.blockHash));
    if (!built) throw new Error(`decided block 0x${toHex(e.blockHash)} was never executed here`);
    const decidedAt = performance.now();
    const round = this.round?.hash === toHex(e.blockHash) ? this.round : undefined;
    const certificate: CommitCertificate = {
      version: 1,
      chainId: this.genesis.chainId,
      height: e.height,
      view: e.view,
      blockHash: e.blockHash,
      signatures: e.signatures.map(([validator, signature]) => ({ validator, signature })),
    };
    await this.ledger.commit(commitOf(built, certificate));
    this.pool.remove(built.block.txs);
    this.built.clear();
    await this.wal.compact([]);
    const ms = (x: number) => Math.round(x * 10) / 10;
    this.log.info("block committed", {
      height: e.height,
      view: e.view,
      txs: built.block.txs.length,
      hash: `0x${toHex(e.blockHash)}`,
      // from this node's proposal (leader) or its arrival here (replica) to the decision, the
      // execution within that, and the ledger write after it
      ...(round ? { roundMs: ms(decidedAt - round.startedAt), executeMs: ms(round.executeMs) } : {}),
      // what a replica's pool lacked of the proposal, and how long fetching it took
      ...(round?.fetch ? { fetched: round.fetch.txs, fetchMs: ms(round.fetch.ms) } : {}),
      writeMs: ms(performance.now() - decidedAt),
    });
    if (this.viewChangeSince !== undefined) {
      this.log.info("consensus recovered: a block committed after view changes", {
        height: e.height,
        view: e.view,
        stalledMs: Date.now() - this.viewChangeSince,
      });
      this.viewChangeSince = undefined;
    }
    this.emit("block:committed", { block: built.block, receipts: built.receipts, certificate });
    await this.advance(e.height);
    if (this.pool.size > 0) await this.run({ type: "work" });
  }
}
