import { decode, encode } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { bytesEqual, concatBytes, toHex } from "@custos/utils";
import { type ConsensusCrypto, type Effect, type Input, PbftEngine } from "../engine.js";
import { type Body, decodeEnvelope, encodeBody, encodeEnvelope } from "../messages.js";
import { frameRecord, readRecords } from "../wal.js";
import { Rng } from "./random.js";

export type Byzantine =
  | "equivocate"
  | "doubleVote"
  | "unknownVotes"
  | "garbage"
  | "hugeView"
  | "badBlock"
  | "twin"
  | "silent";

export interface SimConfig {
  seed: number;
  n: number;
  /** Validator indexes that misbehave, and how. A "twin" index runs two honest engines with one key. */
  byzantine: Map<number, Byzantine>;
  /** Simulated milliseconds to run. */
  durationMs: number;
  delay: [number, number];
  loss: number;
  duplicate: number;
  /** Partitions: from start to heal, messages from a group do not reach the other side (asymmetric when `oneWay`). */
  partitions: { startMs: number; healMs: number; groups: number[][]; oneWay: boolean }[];
  /** Crashes of honest replicas, restarted from their WAL (maybe torn). */
  crashes: { node: number; atMs: number; restartMs: number; tear: boolean }[];
  /**
   * Stalls (SIGSTOP): the replicas keep their state but do nothing; messages sent to them meanwhile
   * are lost (their connections drop) and their timers fire only when they resume.
   */
  pauses?: { nodes: number[]; atMs: number; resumeMs: number }[];
  /** Hold a run whose last fault is a stall to the tight bound: a commit within 4 base timeouts. */
  stallBound?: boolean;
  /**
   * Transactions as the node has them: clients submit one every `everyMs` (from `fromMs` until `untilMs`) to a
   * replica of `submitTo`; it gossips it; a replica proposes only what its own pool holds (and
   * tells the engine when it has nothing); every `regossipMs` a replica announces again what has
   * been pending that long. Without it every replica always has work.
   */
  pool?: { everyMs: number; fromMs?: number; untilMs: number; submitTo: number[]; regossipMs: number };
  baseTimeoutMs: number;
}

interface Replica {
  index: number;
  twin: number;
  engine: PbftEngine;
  /** The WAL's bytes as appended (joined only when the replica restarts: appends stay linear). */
  wal: Uint8Array[];
  up: boolean;
  committed: Uint8Array[];
  byzantine: Byzantine | undefined;
  /** Crash in the middle of the next step (after a random number of its effects). */
  crashMidStep: boolean;
  paused: boolean;
  /** Inputs (timers, host answers, a restart) that came due while paused, run at resume. */
  deferred: Input[];
  /** Pending transactions by id, with when each was last announced. */
  pool: Map<number, number>;
}

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  failures: string[];
  heights: number[];
  messages: number;
  trace: string[];
  lastHealMs: number;
}

const MAX_MSG = 64 * 1024;

/** The simulator's signatures: SM3(secret || body), checked against the validator's secret. Twins share one. */
function simCrypto(seed: number, index: number): ConsensusCrypto {
  const secret = (i: number) => sm3(new TextEncoder().encode(`sim-secret/${seed}/${i}`));
  const secrets = new Map<number, Uint8Array>();
  const of = (i: number) => {
    const s = secrets.get(i) ?? secret(i);
    secrets.set(i, s);
    return s;
  };
  return {
    sign: (body) => sm3(of(index), body),
    verify: (_h, i, body, sig) => sig.byteLength === 32 && bytesEqual(sm3(of(i), body), sig),
    blockHash: (block) => sm3(block),
  };
}

/**
 * A simulated block: [height, proposer, nonce, valid, tx ids]. The host's "execution" checks the
 * valid flag and the height.
 */
export function simBlock(
  height: number,
  proposer: number,
  nonce: number,
  valid = true,
  txs: readonly number[] = [],
): Uint8Array {
  return encode([BigInt(height), proposer, nonce, valid, [...txs]]);
}

function blockInfo(block: Uint8Array): { height: number; valid: boolean; txs: number[] } {
  try {
    const a = decode(block, "SimBlock", 64 * 1024) as [bigint, number, number, boolean, number[]];
    return { height: Number(a[0]), valid: a[3] === true, txs: Array.isArray(a[4]) ? a[4] : [] };
  } catch {
    return { height: -1, valid: false, txs: [] };
  }
}

/** A gossip message of the pool model: tx ids, not a consensus message. */
const GOSSIP_TAG = 0xfe;

export class Simulation {
  readonly rng: Rng;
  private now = 0;
  private seq = 0;
  private readonly queue = new EventHeap();
  readonly replicas: Replica[] = [];
  private readonly proposed = new Set<string>();
  /** Proposed blocks whose execution fails (their roots would not match): never to be committed. */
  private readonly invalidProposed = new Set<string>();
  readonly trace: string[] = [];
  messages = 0;
  private readonly heightAt: { at: number; node: number; height: number }[] = [];

  constructor(readonly cfg: SimConfig) {
    this.rng = new Rng(cfg.seed);
    for (let i = 0; i < cfg.n; i++) {
      const kind = cfg.byzantine.get(i);
      this.replicas.push(this.makeReplica(i, 0, kind));
      if (kind === "twin") this.replicas.push(this.makeReplica(i, 1, kind));
    }
  }

  private makeReplica(index: number, twin: number, byzantine: Byzantine | undefined): Replica {
    return {
      index,
      twin,
      engine: this.newEngine(index),
      wal: [],
      up: true,
      committed: [],
      byzantine,
      crashMidStep: false,
      paused: false,
      deferred: [],
      pool: new Map(),
    };
  }

  private newEngine(index: number): PbftEngine {
    return new PbftEngine(
      {
        chainId: "sim",
        self: index,
        baseTimeoutMs: this.cfg.baseTimeoutMs,
        maxTimeoutMs: this.cfg.baseTimeoutMs * 8,
        maxViewAhead: 64,
        maxMessageBytes: MAX_MSG,
        keepDecisions: 64,
      },
      simCrypto(this.cfg.seed, index),
    );
  }

  private log(s: string): void {
    this.trace.push(`${String(this.now).padStart(6)}ms ${s}`);
    if (this.trace.length > 4000) this.trace.splice(0, 1000);
  }

  private at(delay: number, run: () => void): void {
    this.queue.push({ at: this.now + Math.max(0, delay), seq: this.seq++, run });
  }

  /** Stops the run early once every replica has reached `height` (benchmarks). */
  stopAtHeight: number | undefined;

  private honest(r: Replica): boolean {
    return r.byzantine === undefined;
  }

  private partitioned(from: number, to: number): boolean {
    for (const p of this.cfg.partitions) {
      if (this.now < p.startMs || this.now >= p.healMs) continue;
      const gf = p.groups.findIndex((g) => g.includes(from));
      const gt = p.groups.findIndex((g) => g.includes(to));
      if (gf === gt) continue;
      if (!p.oneWay || gf < gt) return true;
    }
    return false;
  }

  /** Sends bytes from validator `from` to validator `to` (both twins of `to` when it has two). */
  private deliver(from: number, to: number, bytes: Uint8Array): void {
    if (from === to) return;
    for (const r of this.replicas) {
      if (r.index !== to) continue;
      if (this.partitioned(from, to) || this.rng.chance(this.cfg.loss)) continue;
      if (r.paused) continue; // its connections dropped
      const copies = this.rng.chance(this.cfg.duplicate) ? 2 : 1;
      for (let c = 0; c < copies; c++) {
        this.messages++;
        this.at(this.rng.int(this.cfg.delay[0], this.cfg.delay[1]), () =>
          this.input(r, { type: "message", bytes, from }),
        );
      }
    }
  }

  private broadcast(from: number, bytes: Uint8Array): void {
    for (let to = 0; to < this.cfg.n; to++) this.deliver(from, to, bytes);
  }

  private input(r: Replica, input: Input): void {
    if (!r.up) return;
    if (r.paused) {
      // a stopped process loses what the network sent it, and does the rest when it resumes
      if (input.type !== "message") r.deferred.push(input);
      return;
    }
    if (input.type === "message" && input.bytes[0] === GOSSIP_TAG) {
      this.gossipIn(r, input.bytes);
      return;
    }
    let effects: Effect[];
    const before = r.engine.state;
    try {
      effects = r.engine.step(input);
      const after = r.engine.state;
      if (
        after.height === before.height &&
        (after.view !== before.view || after.inViewChange !== before.inViewChange)
      )
        this.log(
          `node ${r.index}.${r.twin} ${after.inViewChange ? "changes to" : "enters"} view ${after.view} at ${after.height} (${input.type})`,
        );
    } catch (err) {
      this.log(`node ${r.index}.${r.twin} engine error: ${(err as Error).message}`);
      throw err;
    }
    const stopAt = r.crashMidStep ? this.rng.int(0, Math.max(0, effects.length - 1)) : -1;
    effects.forEach((e, i) => {
      if (!r.up) return;
      if (i === stopAt) {
        r.crashMidStep = false;
        if (e.type === "persist") {
          const framed = frameRecord(e.record);
          const torn = framed.subarray(0, this.rng.int(1, framed.length - 1));
          r.wal.push(torn);
          this.log(`node ${r.index} crashes while writing its WAL (${torn.length}/${framed.length} bytes)`);
        } else this.log(`node ${r.index} crashes mid-step`);
        r.up = false;
        return;
      }
      this.effect(r, e);
    });
  }

  private effect(r: Replica, e: Effect): void {
    switch (e.type) {
      case "persist":
        r.wal.push(frameRecord(e.record));
        return;
      case "broadcast":
        this.outgoing(r, e.bytes, undefined);
        return;
      case "send":
        this.outgoing(r, e.bytes, e.to);
        return;
      case "setTimer":
        this.at(e.delayMs, () =>
          this.input(r, { type: "timer", height: e.height, view: e.view, kind: e.kind }),
        );
        return;
      case "requestProposal":
        // the host's minimum block interval and block building
        this.at(this.rng.int(50, 200), () => {
          if (!r.up || r.paused) return;
          const bad = r.byzantine === "badBlock";
          const txs = this.cfg.pool ? [...r.pool.keys()].slice(0, 64) : [];
          if (this.cfg.pool && txs.length === 0) {
            this.log(`node ${r.index} has nothing to propose at ${e.height}/${e.view}`);
            this.input(r, { type: "noProposal", height: e.height, view: e.view });
            return;
          }
          const block = simBlock(e.height, r.index, this.rng.int(0, 2 ** 30), !bad, txs);
          this.blockTxs.set(toHex(sm3(block)), txs);
          this.proposed.add(toHex(sm3(block)));
          if (bad) this.invalidProposed.add(toHex(sm3(block)));
          this.log(
            `node ${r.index} proposes ${toHex(sm3(block)).slice(0, 8)} at ${e.height}/${e.view}${bad ? " (invalid)" : ""}`,
          );
          this.input(r, { type: "proposal", height: e.height, view: e.view, block });
        });
        return;
      case "execute":
        this.at(this.rng.int(1, 10), () => {
          const info = blockInfo(e.block);
          this.input(r, {
            type: "executed",
            height: e.height,
            blockHash: e.blockHash,
            valid: info.valid && info.height === e.height,
          });
        });
        return;
      case "commit":
        r.committed[e.height] = e.blockHash;
        this.heightAt.push({ at: this.now, node: r.index, height: e.height });
        this.log(
          `node ${r.index}.${r.twin} commits ${toHex(e.blockHash).slice(0, 8)} at ${e.height} view ${e.view}`,
        );
        for (const t of blockInfo(e.block).txs) r.pool.delete(t);
        this.at(this.rng.int(1, 5), () => {
          this.input(r, { type: "committed", height: e.height, validators: this.cfg.n });
          if (!this.cfg.pool || r.pool.size > 0) this.input(r, { type: "work" });
        });
        return;
      case "invalid":
      case "refused":
        return;
    }
  }

  /** Honest replicas send what their engine says; byzantine ones distort it. */
  private outgoing(r: Replica, bytes: Uint8Array, to: number | undefined): void {
    const send = (b: Uint8Array) =>
      to === undefined ? this.broadcast(r.index, b) : this.deliver(r.index, to, b);
    const kind = r.byzantine;
    if (kind === undefined || kind === "twin" || kind === "badBlock") {
      send(bytes);
      return;
    }
    if (kind === "silent") return;
    const env = decodeEnvelope(bytes, MAX_MSG);
    const crypto = simCrypto(this.cfg.seed, r.index);
    const forge = (body: Body) => {
      const bb = encodeBody(body);
      return encodeEnvelope(bb, r.index, crypto.sign(bb));
    };
    const others = [...Array(this.cfg.n).keys()].filter((i) => i !== r.index);
    const half = others.slice(0, Math.ceil(others.length / 2));
    const b = env.body;
    switch (kind) {
      case "equivocate":
        if (b.kind === "preprepare") {
          const other = simBlock(b.height, r.index, this.rng.int(0, 2 ** 30));
          this.proposed.add(toHex(sm3(other)));
          const alt = forge({ ...b, blockHash: sm3(other), block: other });
          for (const i of others) this.deliver(r.index, i, half.includes(i) ? bytes : alt);
          return;
        }
        send(bytes);
        return;
      case "doubleVote":
        send(bytes);
        if (b.kind === "prepare" || b.kind === "commit") {
          const alt = forge({ ...b, blockHash: this.rng.bytes(32) });
          for (const i of half) this.deliver(r.index, i, alt);
        }
        return;
      case "unknownVotes":
        send(bytes);
        for (const kindOf of ["prepare", "commit"] as const) {
          send(
            forge({
              kind: kindOf,
              chainId: b.chainId,
              height: b.height,
              view: b.view,
              blockHash: this.rng.bytes(32),
            }),
          );
        }
        return;
      case "garbage": {
        send(bytes);
        send(this.rng.bytes(this.rng.int(1, 300)));
        const flipped = bytes.slice();
        flipped[this.rng.int(0, flipped.length - 1)] ^= 0xff;
        send(flipped);
        send(encodeEnvelope(env.bodyBytes, (r.index + 1) % this.cfg.n, env.signature)); // claims another sender
        return;
      }
      case "hugeView":
        send(bytes);
        send(
          forge({
            kind: "viewchange",
            chainId: b.chainId,
            height: b.height,
            view: b.view + 1_000_000_000,
            prepared: null,
          }),
        );
        send(
          forge({
            kind: "viewchange",
            chainId: b.chainId,
            height: b.height,
            view: b.view + 60,
            prepared: null,
          }),
        );
        return;
    }
  }

  private readonly submitted: { id: number; at: number }[] = [];
  private readonly blockTxs = new Map<string, number[]>();

  private txsOf(blockHash: Uint8Array): number[] {
    return this.blockTxs.get(toHex(blockHash)) ?? [];
  }

  private gossip(from: Replica, ids: number[]): void {
    if (ids.length === 0) return;
    const bytes = Uint8Array.from([GOSSIP_TAG, ...encode(ids)]);
    this.broadcast(from.index, bytes);
  }

  private gossipIn(r: Replica, bytes: Uint8Array): void {
    let ids: number[];
    try {
      ids = decode(bytes.subarray(1), "SimGossip", 64 * 1024) as number[];
    } catch {
      return;
    }
    if (!Array.isArray(ids) || !ids.every((x) => Number.isSafeInteger(x))) return; // garbage
    const done = new Set(r.committed.flatMap((h) => (h ? this.txsOf(h) : [])));
    let added = false;
    for (const id of ids) {
      if (r.pool.has(id) || done.has(id)) continue;
      r.pool.set(id, this.now);
      added = true;
    }
    if (added) this.input(r, { type: "work" });
  }

  /** Client submissions and periodic re-announcement of what stays pending. */
  private schedulePool(): void {
    const pool = this.cfg.pool;
    if (!pool) return;
    let next = 0;
    const submit = () => {
      if (this.now > pool.untilMs) return;
      const targets = this.replicas.filter((r) => pool.submitTo.includes(r.index) && r.up && !r.paused);
      if (targets.length > 0) {
        const r = this.rng.pick(targets);
        const id = next++;
        this.submitted.push({ id, at: this.now });
        r.pool.set(id, this.now);
        this.gossip(r, [id]);
        this.input(r, { type: "work" });
      }
      this.at(pool.everyMs, submit);
    };
    this.at(pool.fromMs ?? 0, submit);
    const regossip = () => {
      for (const r of this.replicas) {
        if (!r.up || r.paused || !this.honest(r)) continue;
        const stale: number[] = [];
        for (const [id, at] of r.pool) {
          if (this.now - at >= pool.regossipMs) {
            stale.push(id);
            r.pool.set(id, this.now);
          }
        }
        this.gossip(r, stale);
      }
      this.at(pool.regossipMs, regossip);
    };
    this.at(pool.regossipMs, regossip);
  }

  /** Runs the simulation and checks safety, validity and liveness. */
  run(): SimResult {
    for (const r of this.replicas) {
      this.input(r, { type: "start", height: 1, validators: this.cfg.n });
      if (!this.cfg.pool) this.input(r, { type: "work" });
    }
    this.schedulePool();
    for (const p of this.cfg.pauses ?? []) {
      const victims = this.replicas.filter((r) => p.nodes.includes(r.index));
      this.queue.push({
        at: p.atMs,
        seq: this.seq++,
        run: () => {
          for (const v of victims) v.paused = true;
          this.log(`nodes ${p.nodes.join(",")} pause`);
        },
      });
      this.queue.push({
        at: p.resumeMs,
        seq: this.seq++,
        run: () => {
          this.log(`nodes ${p.nodes.join(",")} resume`);
          for (const v of victims) {
            v.paused = false;
            for (const i of v.deferred.splice(0)) this.input(v, i);
          }
        },
      });
    }
    for (const c of this.cfg.crashes) {
      const victims = this.replicas.filter((r) => r.index === c.node && this.honest(r));
      this.queue.push({
        at: c.atMs,
        seq: this.seq++,
        run: () => {
          for (const v of victims) {
            if (c.tear) v.crashMidStep = true;
            else {
              v.up = false;
              this.log(`node ${v.index} crashes`);
            }
          }
        },
      });
      this.queue.push({
        at: c.restartMs,
        seq: this.seq++,
        run: () => {
          for (const v of victims) {
            v.up = true;
            v.crashMidStep = false;
            const wal = concatBytes(...v.wal);
            const { records, tornBytes, validLength } = readRecords(wal);
            v.wal = [wal.slice(0, validLength)];
            v.engine = this.newEngine(v.index);
            const height = v.committed.length === 0 ? 1 : v.committed.length;
            this.log(
              `node ${v.index} restarts at height ${height} with ${records.length} WAL records (${tornBytes} torn bytes dropped)`,
            );
            this.input(v, { type: "start", height, validators: this.cfg.n, wal: records });
            if (!this.cfg.pool || v.pool.size > 0) this.input(v, { type: "work" });
          }
        },
      });
    }
    for (let ev = this.queue.pop(); ev !== undefined; ev = this.queue.pop()) {
      if (ev.at > this.cfg.durationMs) break;
      this.now = ev.at;
      ev.run();
      if (
        this.stopAtHeight !== undefined &&
        this.replicas.every((r) => r.committed.length > (this.stopAtHeight as number))
      )
        break;
    }
    return this.check();
  }

  private check(): SimResult {
    const failures: string[] = [];
    const honest = this.replicas.filter((r) => this.honest(r));
    const maxH = Math.max(0, ...this.replicas.map((r) => r.committed.length - 1));
    for (let h = 1; h <= maxH; h++) {
      const seen = new Set<string>();
      for (const r of honest) {
        const c = r.committed[h];
        if (!c) continue;
        seen.add(toHex(c));
        if (!this.proposed.has(toHex(c)))
          failures.push(`validity: node ${r.index} committed an unproposed block at ${h}`);
        if (this.invalidProposed.has(toHex(c)))
          failures.push(`validity: node ${r.index} committed a block that fails execution at ${h}`);
      }
      if (seen.size > 1)
        failures.push(`safety: honest nodes committed ${seen.size} different blocks at height ${h}`);
    }
    // validity: nothing invalid committed (the host refused to execute it, so no honest replica voted for it)
    const lastHeal = Math.max(
      0,
      ...this.cfg.partitions.map((p) => p.healMs),
      ...this.cfg.crashes.map((c) => c.restartMs),
      ...(this.cfg.pauses ?? []).map((p) => p.resumeMs),
    );
    // After a stall of replicas that lost quorum, the chain must commit within about one round:
    // the view the replicas then agree on must complete (its leader gets the transactions it
    // missed by re-announcement). Other faults keep the generous bound.
    const afterStall =
      this.cfg.stallBound === true &&
      (this.cfg.pauses ?? []).some((p) => p.resumeMs === lastHeal) &&
      this.cfg.partitions.length === 0;
    const bound = afterStall ? lastHeal + 4 * this.cfg.baseTimeoutMs : lastHeal + 30 * this.cfg.baseTimeoutMs;
    const honestIndexes = new Set(honest.map((r) => r.index));
    if (honestIndexes.size >= this.cfg.n - Math.floor((this.cfg.n - 1) / 3) && bound < this.cfg.durationMs) {
      const progressed = this.heightAt.some(
        (e) => e.at > lastHeal && e.at <= bound && honestIndexes.has(e.node),
      );
      if (!progressed)
        failures.push(`liveness: no block committed between ${lastHeal} ms (heal) and ${bound} ms`);
    }
    if (this.cfg.pool && bound < this.cfg.durationMs) {
      // what clients submitted before the last fault healed is committed in the end
      const committed = new Set<number>();
      for (const r of honest)
        for (const h of r.committed) if (h) for (const t of this.txsOf(h)) committed.add(t);
      const lost = this.submitted.filter((t) => t.at <= lastHeal && !committed.has(t.id)).length;
      if (lost > 0) failures.push(`liveness: ${lost} submitted transactions never committed`);
    }
    return {
      seed: this.cfg.seed,
      ok: failures.length === 0,
      failures,
      heights: this.replicas.map((r) => Math.max(0, r.committed.length - 1)),
      messages: this.messages,
      trace: this.trace,
      lastHealMs: lastHeal,
    };
  }
}

/** A binary min-heap of events by (time, sequence): the run's order is fixed by the seed. */
class EventHeap {
  private readonly h: Event[] = [];
  private less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  push(e: Event): void {
    const h = this.h;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i] as Event, h[p] as Event)) break;
      [h[i], h[p]] = [h[p] as Event, h[i] as Event];
      i = p;
    }
  }
  pop(): Event | undefined {
    const h = this.h;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last !== undefined) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l] as Event, h[m] as Event)) m = l;
        if (r < h.length && this.less(h[r] as Event, h[m] as Event)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m] as Event, h[i] as Event];
        i = m;
      }
    }
    return top;
  }
}

export const BYZANTINE_KINDS: Byzantine[] = [
  "equivocate",
  "doubleVote",
  "unknownVotes",
  "garbage",
  "hugeView",
  "badBlock",
  "twin",
  "silent",
];

/**
 * A random configuration for a seed: network faults, partitions (sometimes one-way), crashes
 * with and without torn WAL tails, and up to `byzantineCount` misbehaving validators.
 */
export function randomConfig(
  seed: number,
  n: number,
  byzantineCount = Math.floor((n - 1) / 3),
  kinds: readonly Byzantine[] = BYZANTINE_KINDS,
): SimConfig {
  const rng = new Rng(seed * 7919 + n);
  const byzantine = new Map<number, Byzantine>();
  const indexes = [...Array(n).keys()];
  for (let k = 0; k < byzantineCount; k++) {
    const i = indexes.splice(rng.int(0, indexes.length - 1), 1)[0] as number;
    byzantine.set(i, rng.pick(kinds));
  }
  const durationMs = 15_000;
  const partitions: SimConfig["partitions"] = [];
  if (rng.chance(0.5)) {
    const shuffled = [...Array(n).keys()].sort(() => rng.next() - 0.5);
    const cut = rng.int(1, n - 1);
    const startMs = rng.int(0, 3000);
    partitions.push({
      startMs,
      healMs: startMs + rng.int(300, 3000),
      groups: [shuffled.slice(0, cut), shuffled.slice(cut)],
      oneWay: rng.chance(0.3),
    });
  }
  const crashes: SimConfig["crashes"] = [];
  const honestIdx = [...Array(n).keys()].filter((i) => !byzantine.has(i));
  if (rng.chance(0.5)) {
    const node = rng.pick(honestIdx);
    const atMs = rng.int(100, 3000);
    crashes.push({ node, atMs, restartMs: atMs + rng.int(100, 3000), tear: rng.chance(0.5) });
  }
  const cfg: SimConfig = {
    seed,
    n,
    byzantine,
    durationMs,
    delay: [1, rng.int(5, 80)],
    loss: rng.chance(0.5) ? rng.next() * 0.1 : 0,
    duplicate: rng.chance(0.5) ? rng.next() * 0.1 : 0,
    partitions,
    crashes,
    baseTimeoutMs: 300,
  };
  // drawn last, so that the faults above stay what they were for every seed
  if (rng.chance(0.3)) {
    // transactions reach honest replicas only (a silent one would keep them to itself)
    cfg.pool = { everyMs: rng.int(20, 150), untilMs: 8000, submitTo: honestIdx, regossipMs: 600 };
  }
  if (rng.chance(0.2)) {
    const count = rng.int(1, n - 1);
    const nodes = [...honestIdx].sort(() => rng.next() - 0.5).slice(0, count);
    const atMs = rng.int(0, 3000);
    cfg.pauses = [{ nodes, atMs, resumeMs: atMs + rng.int(500, 4000) }];
  }
  return cfg;
}

export function runSeed(
  seed: number,
  n: number,
  byzantineCount?: number,
  kinds?: readonly Byzantine[],
): SimResult {
  return new Simulation(randomConfig(seed, n, byzantineCount, kinds)).run();
}
