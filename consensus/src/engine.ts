import { bytesEqual, isCustosError, toHex } from "@custos/utils";
import {
  type Body,
  decodeEnvelope,
  type Envelope,
  encodeBody,
  encodeEnvelope,
  type PreparedCert,
  prepareBody,
  type Signatures,
  type VotePosition,
  votePosition,
} from "./messages.js";

/** What the engine needs of cryptography; the node gives SM2 and SM3, the simulator a fast stand-in. */
export interface ConsensusCrypto {
  /** Signs with this replica's key. */
  sign(body: Uint8Array): Uint8Array;
  /** Checks a signature of validator `index` of the set in force at `height`. */
  verify(height: number, index: number, body: Uint8Array, signature: Uint8Array): boolean;
  /** The 32-byte hash of an encoded block, as the host defines it. */
  blockHash(block: Uint8Array): Uint8Array;
}

/**
 * The host's memory of what this replica last signed, consulted before every vote: `admit`
 * answers false for a vote that comes before the last one in the signing order, or at the same
 * place for another block; the host makes an admitted vote durable on the `persist` effect that
 * follows, before the vote leaves. A refused vote is neither sent nor counted here.
 */
export interface SignGuard {
  admit(vote: VotePosition, digest: Uint8Array): boolean;
}

export interface EngineOptions {
  chainId: string;
  /** This replica's index in the validator set. */
  self: number;
  /** Timeout of view 0; view v waits base * 2^v, never more than maxTimeoutMs. */
  baseTimeoutMs: number;
  maxTimeoutMs: number;
  /** Views further ahead of the current one are refused (a far view from one peer loops nobody). */
  maxViewAhead: number;
  maxMessageBytes: number;
  /** Decided heights kept to answer lagging peers. */
  keepDecisions: number;
}

export type Input =
  /** Begin at `height` (the next to decide) with `validators` validators; `wal` holds this replica's own records. */
  | { type: "start"; height: number; validators: number; wal?: Uint8Array[] }
  | { type: "message"; bytes: Uint8Array; from?: number }
  /** "view": the view's timeout; "resend": time to send this view's own messages again. */
  | { type: "timer"; height: number; view: number; kind?: "view" | "resend" }
  /** The pool has transactions: there is work, so timers run and the leader proposes. */
  | { type: "work" }
  /** The block the host built (and executed) for `requestProposal`. */
  | { type: "proposal"; height: number; view: number; block: Uint8Array }
  /** The host had nothing to propose for `requestProposal`: ask again when work comes. */
  | { type: "noProposal"; height: number; view: number }
  /** The host executed a proposed block: `valid` when its roots match the header. */
  | { type: "executed"; height: number; blockHash: Uint8Array; valid: boolean }
  /** The host stored block `height`; `validators` is the set size from `height + 1` on. */
  | { type: "committed"; height: number; validators: number };

export type Effect =
  /**
   * Make `record` durable before performing any later effect (persist before send). `vote` is
   * where the signed vote sits in the signing order, with a digest of what it votes for (the
   * block hash; for a view change, the prepared block's): a host's sign guard refuses a vote that
   * comes before, or at the same place with another digest than, the last one it let out.
   */
  | { type: "persist"; record: Uint8Array; vote: VotePosition & { digest: Uint8Array } }
  | { type: "broadcast"; bytes: Uint8Array }
  | { type: "send"; to: number; bytes: Uint8Array }
  | { type: "setTimer"; height: number; view: number; delayMs: number; kind: "view" | "resend" }
  | { type: "requestProposal"; height: number; view: number }
  | { type: "execute"; height: number; view: number; blockHash: Uint8Array; block: Uint8Array }
  /** Store the block with these commit signatures, then answer with `committed`. */
  | {
      type: "commit";
      height: number;
      view: number;
      blockHash: Uint8Array;
      block: Uint8Array;
      signatures: Signatures;
    }
  /** A peer sent something invalid: the host may penalise it. */
  | { type: "invalid"; from: number | undefined; reason: string }
  /** The sign guard refused a vote this replica would have signed: it was not sent. */
  | { type: "refused"; vote: VotePosition; digest: Uint8Array };

interface Proposal {
  blockHash: Uint8Array;
  block: Uint8Array;
}

interface Decision {
  height: number;
  view: number;
  blockHash: Uint8Array;
  block: Uint8Array;
  commits: Signatures;
}

const key = (view: number, hash: Uint8Array) => `${view}/${toHex(hash)}`;

/**
 * PBFT (Castro-Liskov) per height, as one writer over its own state: every input goes through
 * `step`, which returns the effects for the host to carry out in order. No I/O, no clock, no
 * randomness: the same inputs give the same effects.
 *
 * Normal case: the leader of (height, view) = (height + view) mod n sends PrePrepare; replicas
 * ask the host to execute the block and Prepare only if its roots match; a quorum of Prepares
 * makes a prepared certificate and a Commit; a quorum of Commits decides. View change: on
 * timeout a replica sends ViewChange(view + 1) with its highest prepared certificate; f + 1
 * ViewChanges for higher views make it join the smallest of them; the new leader sends NewView
 * with a quorum of ViewChanges and re-proposes the highest prepared block among them (or a new
 * block if none was prepared). Timeouts double with every view.
 */
export class PbftEngine {
  private height = 0;
  private n = 1;
  private view = 0;
  private started = false;
  private hasWork = false;
  private decided = false;
  private inViewChange = false;
  private readonly proposals = new Map<number, Proposal>();
  /** Every block of this height seen in a proposal, a re-proposal or a decision, by hash. */
  private readonly blocks = new Map<string, Uint8Array>();
  private readonly execution = new Map<string, boolean | "pending">();
  private readonly prepares = new Map<string, Map<number, Uint8Array>>();
  private readonly commits = new Map<string, Map<number, Uint8Array>>();
  private readonly viewChanges = new Map<number, Map<number, Envelope>>();
  private prepared: PreparedCert | null = null;
  private readonly timers = new Set<number>();
  private readonly resendArmed = new Set<number>();
  /** Peers sent our ViewChange directly, by view and sender: once each between two resends. */
  private readonly vcAnswered = new Set<string>();
  private readonly requested = new Set<number>();
  private readonly newViewSent = new Set<number>();
  /** Own signed bodies by kind/height/view: never two different ones. */
  private readonly signed = new Map<string, Uint8Array>();
  /** Own ViewChange envelopes of this height, by view. */
  private readonly ownViewChanges = new Map<number, Uint8Array>();
  /** Own envelopes of this height by view, sent again while the view is slow. */
  private readonly ownByView = new Map<number, Uint8Array[]>();
  private resends = 0;
  private readonly decisions = new Map<number, Decision>();
  private readonly answered = new Set<string>();
  /** Late votes seen once (justBehind): peer/height/view/kind. */
  private readonly lateVotes = new Set<string>();
  private readonly statusSent = new Set<string>();
  /** Peers seen at later heights, with the highest height each was seen at. */
  private readonly ahead = new Map<number, number>();
  private future: { bytes: Uint8Array; from: number | undefined }[] = [];
  private futureDecisions = new Map<number, Envelope>();
  private out: Effect[] = [];

  constructor(
    private readonly opts: EngineOptions,
    private readonly crypto: ConsensusCrypto,
    private readonly guard?: SignGuard,
  ) {}

  get state() {
    return {
      height: this.height,
      view: this.view,
      validators: this.n,
      decided: this.decided,
      inViewChange: this.inViewChange,
    };
  }

  private get f(): number {
    return Math.floor((this.n - 1) / 3);
  }

  private get quorum(): number {
    return this.n - this.f;
  }

  leaderOf(height: number, view: number): number {
    return (height + view) % this.n;
  }

  step(input: Input): Effect[] {
    this.out = [];
    switch (input.type) {
      case "start":
        this.start(input.height, input.validators, input.wal ?? []);
        break;
      case "message":
        if (this.started) this.onMessage(input.bytes, input.from);
        break;
      case "timer":
        if (this.started) {
          if (input.kind === "resend") this.onResend(input.height, input.view);
          else this.onTimer(input.height, input.view);
        }
        break;
      case "work":
        if (this.started) this.onWork();
        break;
      case "proposal":
        if (this.started) this.onProposal(input.height, input.view, input.block);
        break;
      case "noProposal":
        if (this.started && input.height === this.height) {
          this.requested.delete(input.view);
          this.hasWork = false;
        }
        break;
      case "executed":
        if (this.started) this.onExecuted(input.height, input.blockHash, input.valid);
        break;
      case "committed":
        if (this.started) this.onCommitted(input.height, input.validators);
        break;
    }
    return this.out;
  }

  // ---------- lifecycle ----------

  private start(height: number, validators: number, wal: Uint8Array[]): void {
    this.started = true;
    this.resetHeight(height, validators);
    // Replay our own signed messages of this height: never sign differently, send the same bytes again.
    for (const record of wal) {
      let env: Envelope;
      try {
        env = decodeEnvelope(record, this.opts.maxMessageBytes);
      } catch {
        continue;
      }
      const b = env.body;
      if (env.sender !== this.opts.self || b.height !== height) continue;
      this.signed.set(`${b.kind}/${b.height}/${b.view}`, env.bodyBytes);
      this.out.push({ type: "broadcast", bytes: record });
      const own = this.ownByView.get(b.view) ?? [];
      own.push(record);
      this.ownByView.set(b.view, own);
      if (b.kind === "viewchange") this.ownViewChanges.set(b.view, record);
      if (b.kind === "viewchange" && b.view > this.view) {
        this.view = b.view;
        this.inViewChange = true;
      }
      this.accept(env);
    }
  }

  private resetHeight(height: number, validators: number): void {
    this.height = height;
    this.n = validators;
    this.view = 0;
    this.decided = false;
    this.inViewChange = false;
    this.hasWork = false;
    this.prepared = null;
    for (const m of [
      this.proposals,
      this.blocks,
      this.execution,
      this.prepares,
      this.commits,
      this.viewChanges,
    ]) {
      m.clear();
    }
    this.timers.clear();
    this.resendArmed.clear();
    this.vcAnswered.clear();
    this.ownByView.clear();
    this.ownViewChanges.clear();
    this.requested.clear();
    this.newViewSent.clear();
    for (const k of this.signed.keys()) if (!k.includes(`/${height}/`)) this.signed.delete(k);
  }

  /**
   * The ledger now ends at `height`: decided here, or fetched by block sync with its commit
   * certificate (then possibly several heights ahead of the engine). Consensus goes on above it.
   */
  private onCommitted(height: number, validators: number): void {
    if (height < this.height) return;
    this.resetHeight(height + 1, validators);
    const pending = this.future;
    this.future = [];
    const next = this.futureDecisions.get(this.height);
    for (const h of [...this.futureDecisions.keys()]) if (h <= height) this.futureDecisions.delete(h);
    if (next) this.accept(next);
    for (const m of pending) this.onMessage(m.bytes, m.from);
  }

  // ---------- signing and sending ----------

  private sign(body: Body): Envelope {
    const bodyBytes = encodeBody(body);
    const id = `${body.kind}/${body.height}/${body.view}`;
    const prior = this.signed.get(id);
    if (prior && !bytesEqual(prior, bodyBytes)) {
      throw new Error(`refusing to sign a second, different ${id}: this would be equivocation`);
    }
    this.signed.set(id, bodyBytes);
    const signature = this.crypto.sign(bodyBytes);
    const bytes = encodeEnvelope(bodyBytes, this.opts.self, signature);
    return { bytes, body, bodyBytes, sender: this.opts.self, signature };
  }

  /** Signs, persists, broadcasts, and takes the message as received from ourselves. */
  private send(body: Body): void {
    const vote = votePosition(body);
    const digest = voteDigest(body);
    if (vote && this.guard && !this.guard.admit(vote, digest)) {
      this.out.push({ type: "refused", vote, digest });
      return;
    }
    const env = this.sign(body);
    if (vote) {
      this.out.push({ type: "persist", record: env.bytes, vote: { ...vote, digest } });
      const own = this.ownByView.get(body.view) ?? [];
      own.push(env.bytes);
      this.ownByView.set(body.view, own);
      if (body.kind === "viewchange") this.ownViewChanges.set(body.view, env.bytes);
    }
    this.out.push({ type: "broadcast", bytes: env.bytes });
    this.accept(env);
  }

  /**
   * The view's timeout, and the resending of this replica's own messages. In a view change the
   * timeout starts only once a quorum of ViewChanges for the view is in (Castro-Liskov §4.5): a
   * replica that is ahead of the others on its own does not run further ahead, view after view,
   * so the others catch up with it instead of chasing it forever at the same pace.
   */
  private armTimer(): void {
    if (this.decided) return;
    this.armResend();
    if (this.timers.has(this.view)) return;
    if (this.inViewChange && (this.viewChanges.get(this.view)?.size ?? 0) < this.quorum) return;
    this.timers.add(this.view);
    const delayMs = Math.min(this.opts.maxTimeoutMs, this.opts.baseTimeoutMs * 2 ** Math.min(this.view, 20));
    this.out.push({ type: "setTimer", height: this.height, view: this.view, delayMs, kind: "view" });
  }

  private armResend(): void {
    if (this.resendArmed.has(this.view)) return;
    this.resendArmed.add(this.view);
    this.resends = 0;
    this.out.push({
      type: "setTimer",
      height: this.height,
      view: this.view,
      delayMs: this.opts.baseTimeoutMs / 2,
      kind: "resend",
    });
  }

  // ---------- inputs ----------

  private onWork(): void {
    this.hasWork = true;
    this.armTimer();
    this.maybePropose();
    // a new leader that had nothing to propose when its view's quorum came proposes now
    this.maybeNewView(this.view);
  }

  private maybePropose(): void {
    if (this.decided || !this.hasWork || this.inViewChange) return;
    if (this.leaderOf(this.height, this.view) !== this.opts.self) return;
    if (this.view > 0 || this.proposals.has(this.view) || this.requested.has(this.view)) return;
    this.requested.add(this.view);
    this.out.push({ type: "requestProposal", height: this.height, view: this.view });
  }

  private onProposal(height: number, view: number, block: Uint8Array): void {
    if (height !== this.height || view !== this.view || this.decided) return;
    if (this.leaderOf(height, view) !== this.opts.self || this.proposals.has(view)) return;
    const blockHash = this.crypto.blockHash(block);
    this.execution.set(toHex(blockHash), true); // the proposer executed what it built
    if (view === 0) {
      this.send({ kind: "preprepare", chainId: this.opts.chainId, height, view, blockHash, block });
    } else {
      this.sendNewView(view, { blockHash, block });
    }
  }

  private onExecuted(height: number, blockHash: Uint8Array, valid: boolean): void {
    if (height !== this.height) return;
    const h = toHex(blockHash);
    if (this.execution.get(h) !== "pending") return;
    this.execution.set(h, valid);
    if (!valid) {
      this.out.push({
        type: "invalid",
        from: this.leaderOf(height, this.view),
        reason: `block ${h} fails execution`,
      });
      return;
    }
    this.afterExecution(blockHash);
  }

  private onTimer(height: number, view: number): void {
    if (height !== this.height || view !== this.view || this.decided || !this.timers.has(view)) return;
    this.startViewChange(this.view + 1);
  }

  /**
   * Messages can be lost (a dropped connection): while a view is undecided, this replica's own
   * messages of the view go out again, the same bytes, every base timeout / 2.
   */
  private onResend(height: number, view: number): void {
    if (height !== this.height || view !== this.view || this.decided) return;
    this.vcAnswered.clear(); // peers may be answered again, at most once per resend
    for (const bytes of this.ownByView.get(view) ?? []) this.out.push({ type: "broadcast", bytes });
    if (this.inViewChange && (this.viewChanges.get(view)?.size ?? 0) < this.quorum) {
      // stuck without a quorum while peers are at later heights: the decisions we lack may have
      // been lost; ask those peers again (they answer every status)
      const peers = [...this.ahead].filter(([, h]) => h > this.height).map(([p]) => p);
      if (peers.length > 0) {
        const status = this.sign({ kind: "status", chainId: this.opts.chainId, height: this.height, view });
        for (const to of peers) this.out.push({ type: "send", to, bytes: status.bytes });
      }
    }
    if (++this.resends < 64) {
      this.out.push({ type: "setTimer", height, view, delayMs: this.opts.baseTimeoutMs / 2, kind: "resend" });
    }
  }

  private startViewChange(view: number): void {
    this.view = view;
    this.inViewChange = true;
    this.send({
      kind: "viewchange",
      chainId: this.opts.chainId,
      height: this.height,
      view,
      prepared: this.prepared,
    });
    this.armTimer();
  }

  // ---------- messages ----------

  private reject(from: number | undefined, reason: string): void {
    this.out.push({ type: "invalid", from, reason });
  }

  private onMessage(bytes: Uint8Array, from: number | undefined): void {
    let env: Envelope;
    try {
      env = decodeEnvelope(bytes, this.opts.maxMessageBytes);
    } catch (err) {
      this.reject(
        from,
        isCustosError(err) && err.code.startsWith("DECODE_") ? err.message : "undecodable message",
      );
      return;
    }
    const b = env.body;
    if (b.chainId !== this.opts.chainId) {
      this.reject(from, `chain ${b.chainId}`);
      return;
    }
    if (from !== undefined && from !== env.sender) {
      // At another height the sender may have signed as its index in another validator set (a
      // governance change at the boundary): not provable misbehaviour, so the message is dropped.
      if (b.height !== this.height) return;
      this.reject(from, "sender does not match the connection");
      return;
    }
    if (b.height < this.height) {
      if (b.kind !== "decision" && env.sender < this.n && !this.justBehind(env.sender, b)) {
        // a status is an explicit request (a stuck replica asks again on its own schedule); the
        // signature is checked only when there is something to answer (a late vote of a peer
        // already answered at that height and view costs nothing)
        const due = this.lagAnswers(env.sender, b.height, b.view, b.kind === "status");
        if (due.length > 0 && this.crypto.verify(b.height, env.sender, env.bodyBytes, env.signature))
          this.answerLagging(env.sender, b.view, due);
      }
      return;
    }
    if (b.height > this.height) {
      if (env.sender < this.n && env.sender !== this.opts.self)
        this.ahead.set(env.sender, Math.max(this.ahead.get(env.sender) ?? 0, b.height));
      // a peer is ahead: tell it where we are (once per peer and height) and it sends the decisions we lack
      const ask = `${env.sender}/${this.height}`;
      if (
        b.height > this.height + 1 &&
        !this.statusSent.has(ask) &&
        env.sender < this.n &&
        env.sender !== this.opts.self
      ) {
        this.statusSent.add(ask);
        const status = this.sign({
          kind: "status",
          chainId: this.opts.chainId,
          height: this.height,
          view: this.view,
        });
        this.out.push({ type: "send", to: env.sender, bytes: status.bytes });
      }
      if (b.kind === "decision") {
        if (b.height <= this.height + this.opts.keepDecisions && this.verifyDecision(env))
          this.futureDecisions.set(b.height, env);
      } else if (b.height === this.height + 1 && this.future.length < 4096) {
        this.future.push({ bytes, from });
      }
      return;
    }
    if (env.sender >= this.n) {
      this.reject(from, `sender ${env.sender} is not among ${this.n} validators`);
      return;
    }
    if (b.view > this.view + this.opts.maxViewAhead) {
      this.reject(from, `view ${b.view} is too far ahead of ${this.view}`);
      return;
    }
    if (!this.crypto.verify(b.height, env.sender, env.bodyBytes, env.signature)) {
      this.reject(from, "bad signature");
      return;
    }
    if (b.kind === "decision" && !this.verifyDecision(env)) {
      this.reject(from, "decision without a valid certificate");
      return;
    }
    this.accept(env);
  }

  /** Takes a verified message (or our own) into the state. */
  private accept(env: Envelope): void {
    const b = env.body;
    switch (b.kind) {
      case "preprepare":
        if (b.view !== this.view || this.inViewChange || b.view !== 0) return; // later views begin with NewView
        if (env.sender !== this.leaderOf(b.height, b.view)) {
          this.reject(env.sender, "pre-prepare from a non-leader");
          return;
        }
        this.takeProposal(b.view, { blockHash: b.blockHash, block: b.block }, env.sender);
        return;
      case "prepare":
      case "commit": {
        const votes = b.kind === "prepare" ? this.prepares : this.commits;
        const k = key(b.view, b.blockHash);
        const m = votes.get(k) ?? new Map<number, Uint8Array>();
        votes.set(k, m);
        m.set(env.sender, env.signature);
        if (this.hasWork || env.sender !== this.opts.self) this.armTimer();
        this.progress(b.view, b.blockHash);
        return;
      }
      case "viewchange":
        this.onViewChange(env);
        return;
      case "newview":
        this.onNewView(env);
        return;
      case "decision":
        this.onDecision(b);
        return;
      case "status":
        return; // answered (if it lags) before it got here
    }
  }

  private takeProposal(view: number, p: Proposal, from: number): void {
    const prior = this.proposals.get(view);
    if (prior) {
      if (!bytesEqual(prior.blockHash, p.blockHash)) this.reject(from, `two proposals for view ${view}`);
      return;
    }
    if (!bytesEqual(this.crypto.blockHash(p.block), p.blockHash)) {
      this.reject(from, "proposal hash does not match its block");
      return;
    }
    this.proposals.set(view, p);
    this.blocks.set(toHex(p.blockHash), p.block);
    this.armTimer();
    const h = toHex(p.blockHash);
    const state = this.execution.get(h);
    if (state === undefined) {
      this.execution.set(h, "pending");
      this.out.push({ type: "execute", height: this.height, view, blockHash: p.blockHash, block: p.block });
    } else if (state === true) {
      this.afterExecution(p.blockHash);
    }
  }

  private afterExecution(blockHash: Uint8Array): void {
    const p = this.proposals.get(this.view);
    if (p && bytesEqual(p.blockHash, blockHash) && !this.inViewChange && !this.decided) {
      const id = `prepare/${this.height}/${this.view}`;
      if (!this.signed.has(id))
        this.send({
          kind: "prepare",
          chainId: this.opts.chainId,
          height: this.height,
          view: this.view,
          blockHash,
        });
    }
    for (const [k] of this.commits) {
      const [v, hex] = k.split("/") as [string, string];
      if (hex === toHex(blockHash)) this.progress(Number(v), blockHash);
    }
    this.tryDecision();
  }

  /** Prepared -> Commit, committed -> decide. */
  private progress(view: number, blockHash: Uint8Array): void {
    if (this.decided) return;
    const k = key(view, blockHash);
    const p = this.proposals.get(view);
    const executedOk = this.execution.get(toHex(blockHash)) === true;
    const prepares = this.prepares.get(k);
    if (p && executedOk && bytesEqual(p.blockHash, blockHash) && prepares && prepares.size >= this.quorum) {
      if (!this.prepared || this.prepared.view < view) {
        this.prepared = { view, blockHash, block: p.block, prepares: sortedSigs(prepares) };
      }
      const id = `commit/${this.height}/${view}`;
      if (view === this.view && !this.inViewChange && !this.signed.has(id)) {
        this.send({ kind: "commit", chainId: this.opts.chainId, height: this.height, view, blockHash });
      }
    }
    const commits = this.commits.get(k);
    if (commits && commits.size >= this.quorum && executedOk) {
      const block = this.blockFor(blockHash);
      if (block)
        this.decide({
          height: this.height,
          view,
          blockHash,
          block,
          commits: sortedSigs(commits),
        });
    }
  }

  private blockFor(blockHash: Uint8Array): Uint8Array | undefined {
    return this.blocks.get(toHex(blockHash));
  }

  private decide(d: Decision): void {
    if (this.decided) return;
    this.decided = true;
    this.decisions.set(d.height, d);
    this.decisions.delete(d.height - this.opts.keepDecisions);
    this.out.push({
      type: "commit",
      height: d.height,
      view: d.view,
      blockHash: d.blockHash,
      block: d.block,
      signatures: d.commits,
    });
  }

  // ---------- view change ----------

  private verifyPrepared(height: number, c: PreparedCert): boolean {
    if (!bytesEqual(this.crypto.blockHash(c.block), c.blockHash) || c.prepares.length < this.quorum)
      return false;
    const body = prepareBody(this.opts.chainId, height, c.view, c.blockHash);
    return c.prepares.every(([v, s]) => v < this.n && this.crypto.verify(height, v, body, s));
  }

  private onViewChange(env: Envelope): void {
    const b = env.body as Extract<Body, { kind: "viewchange" }>;
    if (b.view < this.view) {
      // A peer still in an older view change may lack our ViewChange for that view (lost, or cut
      // off when we sent it): without it, it may never see a quorum there, and so never time out
      // into the view we are in. Send it the one we signed for its view (the same bytes) and ours
      // for the current view, once between two of our resends.
      const id = `${b.view}/${env.sender}`;
      if (env.sender !== this.opts.self && !this.vcAnswered.has(id)) {
        this.vcAnswered.add(id);
        for (const v of [b.view, this.view]) {
          const bytes = this.ownViewChanges.get(v);
          if (bytes) this.out.push({ type: "send", to: env.sender, bytes });
        }
      }
      return;
    }
    if (b.prepared && (b.prepared.view >= b.view || !this.verifyPrepared(b.height, b.prepared))) {
      this.reject(env.sender, "view change with an invalid prepared certificate");
      return;
    }
    const m = this.viewChanges.get(b.view) ?? new Map<number, Envelope>();
    this.viewChanges.set(b.view, m);
    m.set(env.sender, env);
    if (b.view === this.view && this.inViewChange) {
      // a peer in our view change may have missed ours (resends stop after a while): answer it
      const id = `${b.view}/${env.sender}`;
      if (env.sender !== this.opts.self && !this.vcAnswered.has(id)) {
        this.vcAnswered.add(id);
        for (const bytes of this.ownByView.get(b.view) ?? [])
          this.out.push({ type: "send", to: env.sender, bytes });
      }
      this.armTimer(); // the view's timeout starts with a quorum of view changes
    }
    // f + 1 replicas want views above ours: join the smallest of them
    if (b.view > this.view) {
      const ahead = new Map<number, number>();
      for (const [v, senders] of this.viewChanges)
        if (v > this.view) for (const s of senders.keys()) ahead.set(s, Math.min(ahead.get(s) ?? v, v));
      // (the smallest, as in PBFT: one faulty replica cannot pull us further than an honest one asks)
      if (ahead.size >= this.f + 1) this.startViewChange(Math.min(...ahead.values()));
    }
    this.maybeNewView(b.view);
  }

  private highestPrepared(envs: Envelope[]): PreparedCert | null {
    let best: PreparedCert | null = null;
    for (const e of envs) {
      const p = (e.body as Extract<Body, { kind: "viewchange" }>).prepared;
      if (p && (!best || p.view > best.view)) best = p;
    }
    return best;
  }

  private maybeNewView(view: number): void {
    if (view !== this.view || !this.inViewChange || this.leaderOf(this.height, view) !== this.opts.self)
      return;
    const m = this.viewChanges.get(view);
    if (!m || m.size < this.quorum || this.newViewSent.has(view)) return;
    const best = this.highestPrepared([...m.values()]);
    if (best) this.sendNewView(view, { blockHash: best.blockHash, block: best.block });
    else if (!this.requested.has(view)) {
      this.requested.add(view);
      this.out.push({ type: "requestProposal", height: this.height, view });
    }
  }

  private sendNewView(view: number, p: Proposal): void {
    const m = this.viewChanges.get(view);
    if (!m || m.size < this.quorum || this.newViewSent.has(view)) return;
    this.newViewSent.add(view);
    const proofs = [...m.values()].sort((a, b) => a.sender - b.sender).slice(0, this.quorum);
    this.send({
      kind: "newview",
      chainId: this.opts.chainId,
      height: this.height,
      view,
      viewChanges: proofs.map((e) => e.bytes),
      blockHash: p.blockHash,
      block: p.block,
    });
  }

  private onNewView(env: Envelope): void {
    const b = env.body as Extract<Body, { kind: "newview" }>;
    if (b.view < this.view || (b.view === this.view && this.proposals.has(b.view))) return;
    if (env.sender !== this.leaderOf(b.height, b.view)) {
      this.reject(env.sender, "new view from a non-leader");
      return;
    }
    const proofs: Envelope[] = [];
    const senders = new Set<number>();
    for (const raw of b.viewChanges) {
      let vc: Envelope;
      try {
        vc = decodeEnvelope(raw, this.opts.maxMessageBytes);
      } catch {
        this.reject(env.sender, "new view with an undecodable view change");
        return;
      }
      const vb = vc.body;
      if (
        vb.kind !== "viewchange" ||
        vb.height !== b.height ||
        vb.view !== b.view ||
        vb.chainId !== this.opts.chainId
      ) {
        this.reject(env.sender, "new view with a view change for something else");
        return;
      }
      if (vc.sender >= this.n || senders.has(vc.sender)) {
        this.reject(env.sender, "new view with duplicate proofs");
        return;
      }
      if (!this.crypto.verify(b.height, vc.sender, vc.bodyBytes, vc.signature)) {
        this.reject(env.sender, "new view with a forged view change");
        return;
      }
      if (vb.prepared && (vb.prepared.view >= vb.view || !this.verifyPrepared(b.height, vb.prepared))) {
        this.reject(env.sender, "new view carrying an invalid prepared certificate");
        return;
      }
      senders.add(vc.sender);
      proofs.push(vc);
    }
    if (senders.size < this.quorum) {
      this.reject(env.sender, "new view without a quorum of view changes");
      return;
    }
    const best = this.highestPrepared(proofs);
    if (best) {
      const ok = proofs.some((e) => {
        const p = (e.body as Extract<Body, { kind: "viewchange" }>).prepared;
        return p !== null && p.view === best.view && bytesEqual(p.blockHash, b.blockHash);
      });
      if (!ok) {
        this.reject(env.sender, "new view does not re-propose the highest prepared block");
        return;
      }
    }
    this.view = b.view;
    this.inViewChange = false;
    this.armTimer();
    this.takeProposal(b.view, { blockHash: b.blockHash, block: b.block }, env.sender);
  }

  // ---------- catching up ----------

  private verifyDecision(env: Envelope): boolean {
    const b = env.body as Extract<Body, { kind: "decision" }>;
    if (b.kind !== "decision" || b.commits.length < this.quorum) return false;
    if (!bytesEqual(this.crypto.blockHash(b.block), b.blockHash)) return false;
    const vote = encodeBody({
      kind: "commit",
      chainId: b.chainId,
      height: b.height,
      view: b.view,
      blockHash: b.blockHash,
    });
    return b.commits.every(([v, s]) => v < this.n && this.crypto.verify(b.height, v, vote, s));
  }

  private onDecision(b: Extract<Body, { kind: "decision" }>): void {
    if (this.decided || b.height !== this.height) return;
    const k = key(b.view, b.blockHash);
    const m = this.commits.get(k) ?? new Map<number, Uint8Array>();
    for (const [v, s] of b.commits) m.set(v, s);
    this.commits.set(k, m);
    this.blocks.set(toHex(b.blockHash), b.block);
    const h = toHex(b.blockHash);
    if (this.execution.get(h) === undefined) {
      this.execution.set(h, "pending");
      this.out.push({
        type: "execute",
        height: this.height,
        view: b.view,
        blockHash: b.blockHash,
        block: b.block,
      });
    } else this.progress(b.view, b.blockHash);
  }

  private tryDecision(): void {
    for (const [k, m] of this.commits) {
      if (m.size < this.quorum) continue;
      const [v, hex] = k.split("/") as [string, string];
      if (this.execution.get(hex) === true)
        this.progress(Number(v), Uint8Array.from(Buffer.from(hex, "hex")));
    }
  }

  /**
   * A vote of the view that decided the height just below, seen for the first time: its sender
   * is a moment behind, not stuck. It gets the quorum's commits as this replica did, and a
   * decision sent now would cost a signature here, a message each way and a certificate check
   * there, on every block for the slowest replica. A replica that is stuck sends its messages
   * again (onResend); the same vote seen twice is answered.
   */
  private justBehind(peer: number, b: Body): boolean {
    if (b.kind !== "preprepare" && b.kind !== "prepare" && b.kind !== "commit") return false;
    if (b.height !== this.height - 1 || this.decisions.get(b.height)?.view !== b.view) return false;
    const id = `${peer}/${b.height}/${b.view}/${b.kind}`;
    if (this.lateVotes.has(id)) return false;
    if (this.lateVotes.size > 100_000) this.lateVotes.clear();
    this.lateVotes.add(id);
    return true;
  }

  /**
   * A peer is at an older height: the decisions it lacks from `height` on, those not sent to it
   * yet for the view its message was in, or all of them when it asks with a status (a replica
   * stuck in a view change without a quorum asks the peers it saw ahead on every resend, so a
   * dropped answer or a partition cannot leave it behind for good).
   */
  private lagAnswers(peer: number, height: number, view: number, asked: boolean): Decision[] {
    const due: Decision[] = [];
    if (peer === this.opts.self) return due;
    for (let h = height; h < this.height; h++) {
      const d = this.decisions.get(h);
      if (d && (asked || !this.answered.has(`${peer}/${h}/${view}`))) due.push(d);
    }
    return due;
  }

  /** Sends `peer` these decisions, each remembered as answered for the view its message was in. */
  private answerLagging(peer: number, view: number, due: Decision[]): void {
    for (const d of due) {
      this.answered.add(`${peer}/${d.height}/${view}`);
      if (this.answered.size > 100_000) this.answered.clear();
      const env = this.sign({ kind: "decision", chainId: this.opts.chainId, ...d });
      this.out.push({ type: "send", to: peer, bytes: env.bytes });
    }
  }
}

const NO_BLOCK = new Uint8Array(32);

/** What a vote is for: the block it names (a view change: the block it carries as prepared, if any). */
export function voteDigest(body: Body): Uint8Array {
  switch (body.kind) {
    case "preprepare":
    case "newview":
    case "prepare":
    case "commit":
      return body.blockHash;
    case "viewchange":
      return body.prepared?.blockHash ?? NO_BLOCK;
    default:
      return NO_BLOCK;
  }
}

function sortedSigs(m: Map<number, Uint8Array>): Signatures {
  return [...m.entries()].sort((a, b) => a[0] - b[0]) as Signatures;
}
