import { sm3 } from "@custos/crypto";
import { bytesEqual, toHex } from "@custos/utils";
import { type ConsensusCrypto, type Effect, type Input, PbftEngine } from "../src/engine.js";
import { type Body, decodeEnvelope } from "../src/messages.js";
import { simBlock } from "../src/sim/simulator.js";

export const BASE = 300;

export function testCrypto(index: number): ConsensusCrypto {
  const secret = (i: number) => sm3(new TextEncoder().encode(`harness/${i}`));
  return {
    sign: (body) => sm3(secret(index), body),
    verify: (_h, i, body, sig) => bytesEqual(sm3(secret(i), body), sig),
    blockHash: (b) => sm3(b),
  };
}

export interface Sent {
  from: number;
  to: number | undefined;
  bytes: Uint8Array;
  body: Body;
}

/**
 * Engines wired by hand: the test decides which messages arrive and when timers fire.
 * Execution is answered at once (valid), commits are acknowledged at once.
 */
export class Harness {
  engines: (PbftEngine | null)[] = [];
  readonly wal: Uint8Array[][] = [];
  queue: Sent[] = [];
  readonly sentLog: Sent[] = [];
  readonly timers: {
    node: number;
    height: number;
    view: number;
    kind: "view" | "resend";
    delayMs: number;
  }[] = [];
  readonly proposals: { node: number; height: number; view: number }[] = [];
  readonly committed: Map<number, { hash: string; view: number }>[] = [];
  readonly invalid: { node: number; reason: string }[] = [];
  private nonce = 1;

  constructor(readonly n: number) {
    for (let i = 0; i < n; i++) {
      this.engines.push(this.engine(i));
      this.wal.push([]);
      this.committed.push(new Map());
    }
  }

  engine(i: number): PbftEngine {
    return new PbftEngine(
      {
        chainId: "harness",
        self: i,
        baseTimeoutMs: BASE,
        maxTimeoutMs: 8 * BASE,
        maxViewAhead: 64,
        maxMessageBytes: 64 * 1024,
        keepDecisions: 16,
      },
      testCrypto(i),
    );
  }

  input(node: number, input: Input): Effect[] {
    const e = this.engines[node];
    if (!e) return [];
    const effects = e.step(input);
    for (const eff of effects) this.apply(node, eff);
    return effects;
  }

  private apply(node: number, e: Effect): void {
    switch (e.type) {
      case "persist":
        this.wal[node]?.push(e.record);
        return;
      case "broadcast":
      case "send": {
        const s = {
          from: node,
          to: e.type === "send" ? e.to : undefined,
          bytes: e.bytes,
          body: decodeEnvelope(e.bytes, 64 * 1024).body,
        };
        this.queue.push(s);
        this.sentLog.push(s);
        return;
      }
      case "setTimer":
        this.timers.push({ node, height: e.height, view: e.view, kind: e.kind, delayMs: e.delayMs });
        return;
      case "requestProposal":
        this.proposals.push({ node, height: e.height, view: e.view });
        return;
      case "execute":
        this.input(node, { type: "executed", height: e.height, blockHash: e.blockHash, valid: true });
        return;
      case "commit":
        this.committed[node]?.set(e.height, { hash: toHex(e.blockHash), view: e.view });
        this.input(node, { type: "committed", height: e.height, validators: this.n });
        this.input(node, { type: "work" }); // the pool still has transactions
        return;
      case "invalid":
        this.invalid.push({ node, reason: e.reason });
        return;
    }
  }

  startAll(height = 1): void {
    for (let i = 0; i < this.n; i++) {
      this.input(i, { type: "start", height, validators: this.n });
      this.input(i, { type: "work" });
    }
  }

  /** Answers node's pending proposal request with a fresh block; returns the block. */
  propose(node: number): Uint8Array {
    const req = this.proposals.filter((p) => p.node === node).pop();
    if (!req) throw new Error(`node ${node} asked for no proposal`);
    const block = simBlock(req.height, node, this.nonce++);
    this.input(node, { type: "proposal", height: req.height, view: req.view, block });
    return block;
  }

  /** Delivers queued messages (and those they cause) for which `keep` is true; the rest are dropped. */
  deliver(keep: (m: Sent, to: number) => boolean = () => true, rounds = 1000): void {
    for (let r = 0; r < rounds && this.queue.length > 0; r++) {
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        for (let to = 0; to < this.n; to++) {
          if (to === m.from || (m.to !== undefined && m.to !== to) || !keep(m, to)) continue;
          this.input(to, { type: "message", bytes: m.bytes, from: m.from });
        }
      }
    }
  }

  /** Fires the current view timer of each listed node. */
  timeout(nodes: number[]): void {
    for (const i of nodes) {
      const e = this.engines[i];
      if (!e) continue;
      this.input(i, { type: "timer", height: e.state.height, view: e.state.view, kind: "view" });
    }
  }

  /** Fires the resend timer of each listed node: its own messages of the view go out again. */
  resend(nodes: number[]): void {
    for (const i of nodes) {
      const e = this.engines[i];
      if (e) this.input(i, { type: "timer", height: e.state.height, view: e.state.view, kind: "resend" });
    }
  }

  crash(node: number): void {
    this.engines[node] = null;
    this.queue = this.queue.filter((m) => m.from !== node);
  }

  restart(node: number, height: number): Effect[] {
    this.engines[node] = this.engine(node);
    return this.input(node, { type: "start", height, validators: this.n, wal: this.wal[node] });
  }
}
