import { rm } from "node:fs/promises";
import { type AuditEvent, auditEvents, fenOf, field, intOf, type RawEvent, strOf } from "@custos/audit";
import {
  decode,
  encode,
  fieldAt,
  readArray,
  readBool,
  readBytes,
  readNullable,
  readString,
  readU64,
} from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { type Block, decodeReceipt, encodeGenesis, type Genesis, type Receipt } from "@custos/types";
import { bytesEqual, CustosError, errorMessage, type Logger, toHex } from "@custos/utils";
import { Level } from "level";
import { crashPoint } from "../crashPoint.js";
import { senderAddress } from "../execution/senders.js";
import { SlabBatch } from "../ledger/repository.js";
import { levelOptions } from "../ledger/writeBuffer.js";

/**
 * The audit index (DESIGN.md §7a): every committed transaction and event by account, contract,
 * card, programme, event name and time, in a LevelDB of its own (HOME/data/audit), built from the
 * committed blocks after each commit, off the commit's path, and from the ledger when it is
 * behind (a new index on an existing ledger, a restart). Each block's entries and the indexed
 * height are one batch: after a crash (kill -9 included) the index holds whole blocks up to its
 * height and catches up from the ledger. It is derived data: an index of another chain, or ahead
 * of its ledger (a reset ledger), is dropped and rebuilt.
 */
export type AuditIndexErrorCode =
  | "AUDIT_INDEX_OPEN_FAILED"
  | "AUDIT_INDEX_BUILDING"
  | "AUDIT_INDEX_DISABLED"
  /** A query reaches below the first block this node's index holds (see AuditIndex.first). */
  | "AUDIT_HISTORY_UNAVAILABLE";

/** What the index reads of the chain. */
export interface IndexedChain {
  head: { height: number };
  /**
   * The ledger's base: 0, or the height it started from (a snapshot) or was pruned to; it holds
   * no receipts below, so the index can start no lower than base + 1.
   */
  readonly base?: number;
  getBlock(height: number): Promise<Block | undefined>;
  getReceipts(height: number): Promise<Uint8Array[] | undefined>;
}

export interface AuditIndexOptions {
  dir: string;
  genesis: Genesis;
  /** LevelDB's memtable in bytes (ledger/writeBuffer.ts); LevelDB's default when absent. */
  writeBufferBytes?: number;
}

export interface AuditIndexModules {
  chain: IndexedChain;
  log: Logger;
}

/** One-byte key spaces; a retired one stays as a comment and is never reused. */
const K = {
  meta: 0x01,
  /** height (8) -> timestamp (8) */
  blockTime: 0x02,
  /** height (8) | tx (4) -> [txHash, sender, to, method, value, success, errorCode, events] */
  tx: 0x03,
  /** height (8) | tx (4) | event (2) -> [emitter, name, data, topics] */
  event: 0x04,
  /** subject | 0 | position (14) -> (empty): the events of each audit chain */
  subject: 0x05,
  /** address | 0 | height (8) | tx (4) -> role bits (1 sender, 2 callee): transactions by account/contract */
  accountTx: 0x06,
  /** kind | 0 | name | 0 | position -> (empty): events by name (kind: a system contract, or "vm") */
  name: 0x07,
  /** address -> [template, version, codeHash, creator, height, time, name?, merchant?]: contract instances */
  instance: 0x08,
  /** programme | 0 | product (4) -> [name, kind] */
  product: 0x09,
  /** address | 0 | height (8) -> institution ("" for none): member.institution over time */
  institution: 0x0a,
  /** position -> (empty): validator-set changes */
  validatorChange: 0x0b,
  /** address -> balance (fen, from the e-CNY events) */
  balance: 0x0c,
  /** timestamp (8) | height (8) -> (empty): blocks by time */
  time: 0x0d,
} as const;
const META_HEIGHT = Uint8Array.of(K.meta, 1);
const META_GENESIS = Uint8Array.of(K.meta, 2);
const META_FORMAT = Uint8Array.of(K.meta, 3);
const META_ISSUED = Uint8Array.of(K.meta, 4);
/** The first height indexed (absent: 1, the index holds the chain from genesis). */
const META_FIRST = Uint8Array.of(K.meta, 5);
const FORMAT = 1;
/** Accounts whose index balance is kept in memory. */
const BALANCE_CACHE = 100_000;

const utf8 = new TextEncoder();
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
/** An index key: the key space's byte, then the parts (strings as UTF-8, written directly when ASCII). */
function key(prefix: number, ...parts: (Uint8Array | string)[]): Uint8Array {
  let n = 1;
  let ascii = true;
  for (const p of parts) {
    if (typeof p !== "string") n += p.byteLength;
    else {
      n += p.length;
      for (let i = 0; ascii && i < p.length; i++) if (p.charCodeAt(i) > 0x7f) ascii = false;
    }
  }
  if (!ascii) return key(prefix, ...parts.map((p) => (typeof p === "string" ? utf8.encode(p) : p)));
  const out = new Uint8Array(n);
  out[0] = prefix;
  let at = 1;
  for (const p of parts) {
    if (typeof p === "string") {
      for (let i = 0; i < p.length; i++) out[at + i] = p.charCodeAt(i);
      at += p.length;
    } else {
      out.set(p, at);
      at += p.byteLength;
    }
  }
  return out;
}
const ZERO = Uint8Array.of(0);
/** accountTx values (the batch copies them): sender, callee, both. */
const ROLE_SENDER = Uint8Array.of(1);
const ROLE_CALLEE = Uint8Array.of(2);
const ROLE_BOTH = Uint8Array.of(3);
const EMPTY = new Uint8Array(0);
/** height (8) | tx (4) [| event (2)], big-endian: the order of the chain. */
function pos(height: number, tx: number, event?: number): Uint8Array {
  const out = new Uint8Array(event === undefined ? 12 : 14);
  const v = new DataView(out.buffer);
  v.setUint32(0, Math.floor(height / 0x1_0000_0000));
  v.setUint32(4, height >>> 0);
  v.setUint32(8, tx);
  if (event !== undefined) v.setUint16(12, event);
  return out;
}
const readPos = (b: Uint8Array, at: number) => {
  const v = Buffer.from(b.buffer, b.byteOffset + at, 14);
  return { height: Number(v.readBigUInt64BE(0)), tx: v.readUInt32BE(8), index: v.readUInt16BE(12) };
};
/** The smallest key above every key with this prefix. */
function after(prefix: Uint8Array): Uint8Array {
  const out = Uint8Array.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if ((out[i] as number) < 0xff) {
      out[i] = (out[i] as number) + 1;
      return out.slice(0, i + 1);
    }
  }
  return Uint8Array.of(0xff, 0xff);
}

export interface IndexedTx {
  height: number;
  tx: number;
  time: number;
  txHash: string;
  sender: string;
  to: string;
  method: string;
  value: bigint;
  success: boolean;
  errorCode: string | null;
  events: number;
}

export interface InstanceRecord {
  address: string;
  template: string;
  version: string;
  codeHash: string;
  creator: string;
  height: number;
  time: number;
  /** For a prepaid-card programme (ProgrammeOpened): its name and merchant. */
  name: string | null;
  merchant: string | null;
}

type Db = Level<Uint8Array, Uint8Array>;
/** An event's place in the chain: block, transaction in it, event in its receipt. */
type Position = { height: number; tx: number; index: number };
type Batch = SlabBatch;
/** One batch being built: its puts, and the running sums it will write with them. */
interface BatchWrite {
  batch: Batch;
  balances: Map<string, bigint>;
  issued: bigint | undefined;
}

/** Blocks a catch-up writes per batch, and the transactions after which it lets other work run. */
const CATCH_UP_BATCH_BLOCKS = 100;
/** Committed blocks held for the index at most (beyond, it reads them from the ledger). */
const MAX_PENDING_BLOCKS = 256;
const YIELD_EVERY_TXS = 500;
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class AuditIndex {
  private indexed = 0;
  private firstHeight = 1;
  private running: Promise<void> | undefined;
  private closed = false;
  private failed: Error | undefined;
  private readonly pending = new Map<number, { block: Block; receipts: readonly Receipt[] }>();
  private readonly waiters: { height: number; resolve: () => void }[] = [];
  private readonly instances = new Map<string, InstanceRecord>();
  /** Balances as last written (the index is their only writer), so a block reads few of them back. */
  private readonly balanceCache = new Map<string, bigint>();
  /** Where a catch-up stands (for status and the log). */
  private catchUp: { from: number; to: number; startedAt: number; loggedAt?: number } | undefined;

  private constructor(
    private readonly db: Db,
    private readonly m: AuditIndexModules,
  ) {}

  /** Opens (or creates) the index; one of another chain, or ahead of the ledger, is rebuilt. */
  static async open(o: AuditIndexOptions, m: AuditIndexModules): Promise<AuditIndex> {
    const genesisHash = sm3(encodeGenesis(o.genesis));
    let db = await AuditIndex.openDb(o.dir, o.writeBufferBytes);
    const stored = await db.get(META_GENESIS);
    const format = await db.get(META_FORMAT);
    const heightRaw = await db.get(META_HEIGHT);
    const height = heightRaw === undefined ? 0 : Number(Buffer.from(heightRaw).readBigUInt64BE(0));
    // the lowest block the ledger holds with its receipts: blocks at or below its base are gone
    // (it started from a snapshot, or pruned them)
    const base = m.chain.base ?? 0;
    const why =
      stored !== undefined && !bytesEqual(stored, genesisHash)
        ? "it belongs to another genesis"
        : format !== undefined && format[0] !== FORMAT
          ? `its format is ${format[0]}, this node writes ${FORMAT}`
          : height > m.chain.head.height
            ? `it is at height ${height}, above the ledger's ${m.chain.head.height} (the ledger was reset)`
            : stored !== undefined && height < base
              ? `it is at height ${height}, and the ledger holds blocks from ${base + 1} only`
              : undefined;
    if (why !== undefined) {
      m.log.warn("audit index dropped, rebuilding it from the ledger", { dir: o.dir, reason: why });
      await db.close();
      await rm(o.dir, { recursive: true, force: true });
      db = await AuditIndex.openDb(o.dir, o.writeBufferBytes);
    }
    const index = new AuditIndex(db, m);
    if ((await db.get(META_GENESIS)) === undefined) {
      // a new index starts where the ledger's blocks start: after its base
      await db.batch(
        [
          { type: "put", key: META_GENESIS, value: genesisHash },
          { type: "put", key: META_FORMAT, value: Uint8Array.of(FORMAT) },
          { type: "put", key: META_HEIGHT, value: u64(base) },
          { type: "put", key: META_FIRST, value: u64(base + 1) },
        ],
        { sync: true },
      );
      index.indexed = base;
      index.firstHeight = base + 1;
      if (base > 0)
        m.log.warn(
          "audit index: the ledger holds no blocks below its base, so the audit history starts after it",
          {
            firstHeight: base + 1,
          },
        );
    } else {
      const first = await db.get(META_FIRST);
      index.indexed = height;
      index.firstHeight = first === undefined ? 1 : Number(Buffer.from(first).readBigUInt64BE(0));
    }
    for await (const [k, v] of db.iterator({
      gte: Uint8Array.of(K.instance),
      lt: Uint8Array.of(K.instance + 1),
    })) {
      const r = decodeInstance(Buffer.from(k.subarray(1)).toString("utf8"), v);
      index.instances.set(r.address, r);
    }
    return index;
  }

  private static async openDb(dir: string, writeBufferBytes?: number): Promise<Db> {
    const db = new Level<Uint8Array, Uint8Array>(dir, levelOptions(writeBufferBytes));
    try {
      await db.open();
    } catch (cause) {
      throw new CustosError<AuditIndexErrorCode>(
        "AUDIT_INDEX_OPEN_FAILED",
        `cannot open the audit index at ${dir}: ${errorMessage((cause as { cause?: unknown }).cause ?? cause)}`,
        { dir },
        { cause },
      );
    }
    return db;
  }

  /**
   * The first block indexed: 1 (the chain from genesis) unless the ledger the index was built
   * from started at a snapshot or had pruned its old blocks; queries reaching below it fail
   * AUDIT_HISTORY_UNAVAILABLE.
   */
  get first(): number {
    return this.firstHeight;
  }

  /** The height up to which every block is indexed. */
  get height(): number {
    return this.indexed;
  }

  /** A catch-up in progress: from where, to where. */
  get building(): { from: number; to: number } | undefined {
    return this.catchUp ? { from: this.catchUp.from, to: this.catchUp.to } : undefined;
  }

  /** Starts indexing what the ledger holds beyond the index (in the background). */
  start(): void {
    this.kick();
  }

  /** After each commit: the block is indexed soon, off the commit's path. */
  committed(block: Block, receipts: readonly Receipt[]): void {
    if (this.closed) return;
    // kept while the index is close behind; far behind (a long sync), it reads the ledger instead
    if (block.header.height > this.indexed && this.pending.size < MAX_PENDING_BLOCKS)
      this.pending.set(block.header.height, { block, receipts });
    // after the commit's own work (RPC notifications, the block announcement), not inside it
    setImmediate(() => this.kick());
  }

  private kick(): void {
    if (this.running || this.closed || this.failed || this.indexed >= this.m.chain.head.height) return;
    const run = this.drain();
    this.running = run;
    run.then(
      () => {
        this.running = undefined;
        this.kick(); // blocks committed while the last batch was written
      },
      () => {},
    );
  }

  /** Indexes up to the ledger's head; a failure stops the index (it catches up at the next start). */
  private async drain(): Promise<void> {
    try {
      while (!this.closed && this.indexed < this.m.chain.head.height) await this.step();
    } catch (err) {
      if (this.closed) return;
      this.failed = err as Error;
      this.m.log.error("audit index stopped: it will catch up at the next start", {
        height: this.indexed,
        error: errorMessage(err),
      });
      for (const w of this.waiters.splice(0)) w.resolve();
    } finally {
      this.catchUp = undefined;
    }
  }

  /**
   * Indexes the next blocks in one batch: those consensus or sync just handed over, else (behind:
   * a new index on an existing ledger, a restart) up to CATCH_UP_BATCH_BLOCKS from the ledger,
   * with progress in the log.
   */
  private async step(): Promise<void> {
    const head = this.m.chain.head.height;
    const next = this.indexed + 1;
    if (!this.catchUp && head - next >= 10) {
      this.catchUp = { from: next, to: head, startedAt: Date.now() };
      this.m.log.info("audit index catching up from the ledger", { from: next, to: head });
    }
    const last = Math.min(head, next + CATCH_UP_BATCH_BLOCKS - 1);
    const w: BatchWrite = { batch: new SlabBatch(this.db.batch()), balances: new Map(), issued: undefined };
    for (let h = next; h <= last; h++) {
      const c = this.pending.get(h);
      if (c) {
        await this.indexBlock(w, c.block, c.receipts);
        continue;
      }
      const block = await this.m.chain.getBlock(h);
      const raw = await this.m.chain.getReceipts(h);
      if (!block || !raw)
        throw (this.m.chain.base ?? 0) >= h
          ? new CustosError<AuditIndexErrorCode>(
              "AUDIT_HISTORY_UNAVAILABLE",
              `block ${h} was pruned from the ledger before the audit index took it in; the index is rebuilt from block ${(this.m.chain.base ?? 0) + 1} at the next start`,
            )
          : new CustosError("LEDGER_CORRUPT", `block ${h} or its receipts are missing from the ledger`);
      await this.indexBlock(
        w,
        block,
        raw.map((r) => decodeReceipt(r)),
      );
    }
    for (const [a, b] of w.balances) w.batch.put(key(K.balance, a), encode(b));
    if (w.issued !== undefined) w.batch.put(META_ISSUED, encode(w.issued));
    await this.finish(w.batch, last);
    for (const [a, b] of w.balances) {
      this.balanceCache.delete(a); // most recently written last: the oldest go first when it is full
      this.balanceCache.set(a, b);
    }
    for (const a of this.balanceCache.keys()) {
      if (this.balanceCache.size <= BALANCE_CACHE) break;
      this.balanceCache.delete(a);
    }
    if (this.catchUp) {
      this.catchUp.to = Math.max(this.catchUp.to, head);
      const done = last >= this.catchUp.to;
      if (done || Date.now() - (this.catchUp.loggedAt ?? this.catchUp.startedAt) >= 5000) {
        this.catchUp.loggedAt = Date.now();
        this.m.log.info(done ? "audit index caught up" : "audit index catching up", {
          height: last,
          blocks: `${last - this.catchUp.from + 1}/${this.catchUp.to - this.catchUp.from + 1}`,
          ms: Date.now() - this.catchUp.startedAt,
        });
        if (done) this.catchUp = undefined;
      }
    }
  }

  private async finish(batch: Batch, height: number): Promise<void> {
    batch.put(META_HEIGHT, u64(height));
    crashPoint("audit.index.beforeWrite");
    await batch.write();
    for (const h of [...this.pending.keys()]) if (h <= height) this.pending.delete(h);
    this.indexed = height;
    for (const w of [...this.waiters]) {
      if (w.height <= height) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /**
   * Resolves once the index holds `height` (AUDIT_INDEX_BUILDING after `timeoutMs`, saying how
   * far it is).
   */
  async waitFor(height: number, o: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.indexed >= height) return;
    const stopped = () =>
      new CustosError<AuditIndexErrorCode>(
        "AUDIT_INDEX_BUILDING",
        this.failed
          ? `the audit index stopped at height ${this.indexed} (${errorMessage(this.failed)}); it catches up when the node restarts`
          : `the audit index is closed at height ${this.indexed}`,
      );
    if (this.failed || this.closed) throw stopped();
    this.kick();
    await new Promise<void>((resolve, reject) => {
      const w = { height, resolve: () => done(resolve) };
      const timer = setTimeout(
        () =>
          done(() =>
            reject(
              new CustosError<AuditIndexErrorCode>(
                "AUDIT_INDEX_BUILDING",
                `the audit index is at height ${this.indexed} of ${height}${this.catchUp ? " (catching up from the ledger)" : ""}; try again shortly`,
                { height: this.indexed, target: height, retryable: true },
              ),
            ),
          ),
        o.timeoutMs ?? 10_000,
      );
      const onAbort = () => done(() => reject(o.signal?.reason));
      const done = (then: () => void) => {
        clearTimeout(timer);
        o.signal?.removeEventListener("abort", onAbort);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        then();
      };
      o.signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(w);
    });
    // woken without the height: the index stopped or closed
    if (this.indexed < height) throw stopped();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.running?.catch(() => {});
    for (const w of this.waiters.splice(0)) w.resolve();
    await this.db.close();
  }

  // ---------- writing ----------

  private async indexBlock(w: BatchWrite, block: Block, receipts: readonly Receipt[]): Promise<void> {
    const { batch } = w;
    const h = block.header.height;
    const time = block.header.timestamp;
    batch.put(key(K.blockTime, u64(h)), u64(time));
    batch.put(key(K.time, u64(time), u64(h)), EMPTY);
    for (const [i, stx] of block.txs.entries()) {
      if (i > 0 && i % YIELD_EVERY_TXS === 0) await yieldToLoop();
      const r = receipts[i] as Receipt;
      const sender = senderAddress(stx.tx.sender);
      const txHash = `0x${toHex(stx.hash)}`;
      const at = pos(h, i);
      batch.put(
        key(K.tx, at),
        encode([
          stx.hash,
          sender,
          stx.tx.to,
          stx.tx.method,
          stx.tx.value,
          r.success,
          r.errorCode,
          r.events.length,
        ]),
      );
      batch.put(key(K.accountTx, sender, ZERO, at), ROLE_SENDER);
      if (stx.tx.to.startsWith("0x"))
        batch.put(key(K.accountTx, stx.tx.to, ZERO, at), stx.tx.to === sender ? ROLE_BOTH : ROLE_CALLEE);
      if (r.events.length === 0) continue;
      const events = auditEvents({ height: h, tx: i, time, txHash, sender }, r.events);
      for (const [k, e] of r.events.entries()) {
        const p = pos(h, i, k);
        batch.put(key(K.event, p), encode([e.emitter, e.name, e.data, e.topics]));
        for (const s of (events[k] as AuditEvent).subjects) batch.put(key(K.subject, s, ZERO, p), EMPTY);
        batch.put(key(K.name, e.emitter.startsWith("0x") ? "vm" : e.emitter, ZERO, e.name, ZERO, p), EMPTY);
        await this.derive(w, events[k] as AuditEvent, p);
      }
    }
  }

  /** Records what later queries look up: instances, products, institutions, balances, set changes. */
  private async derive(w: BatchWrite, e: AuditEvent, p: Uint8Array): Promise<void> {
    const { batch } = w;
    const m = e.movement;
    if (m.ecny) {
      const move = async (a: string, d: bigint) =>
        w.balances.set(a, (w.balances.get(a) ?? this.balanceCache.get(a) ?? (await this.balance(a))) + d);
      if (m.to) await move(m.to, m.amount);
      if (m.from) await move(m.from, -m.amount);
      else w.issued = (w.issued ?? (await this.issued())) + m.amount;
      return;
    }
    const d = e.data;
    if (e.emitter === "templates" && e.name === "InstanceCreated" && Array.isArray(d)) {
      const r: InstanceRecord = {
        address: String(d[0]),
        codeHash: String(d[1]),
        template: String(d[2]),
        version: String(d[3]),
        creator: String(d[4]),
        height: e.height,
        time: e.time,
        name: this.instances.get(String(d[0]))?.name ?? null,
        merchant: this.instances.get(String(d[0]))?.merchant ?? null,
      };
      this.saveInstance(batch, r);
    } else if (e.emitter.startsWith("0x") && e.name === "ProgrammeOpened") {
      // emitted by the instance's init, before InstanceCreated in the same transaction
      const r = this.instances.get(e.emitter) ?? {
        address: e.emitter,
        template: "",
        version: "",
        codeHash: "",
        creator: strOf(field(d, "institution")) ?? "",
        height: e.height,
        time: e.time,
        name: null,
        merchant: null,
      };
      this.saveInstance(batch, {
        ...r,
        name: strOf(field(d, "name")) ?? null,
        merchant: strOf(field(d, "merchant")) ?? null,
      });
    } else if (e.emitter.startsWith("0x") && e.name === "ProductAdded") {
      const id = intOf(field(d, "product"));
      if (id !== undefined)
        batch.put(
          key(K.product, e.emitter, ZERO, u32(id)),
          encode([
            strOf(field(d, "name")) ?? "",
            strOf(field(d, "kind")) ?? "",
            fenOf(field(d, "price")) ?? 0n,
          ]),
        );
    } else if (e.emitter === "members" && e.name === "InstitutionSet" && Array.isArray(d)) {
      batch.put(
        key(K.institution, String(d[0]), ZERO, u64(e.height)),
        utf8.encode(typeof d[1] === "string" ? d[1] : ""),
      );
    } else if (e.emitter === "validators" && (e.name === "ValidatorAdded" || e.name === "ValidatorRemoved")) {
      batch.put(key(K.validatorChange, p), EMPTY);
    }
  }

  private saveInstance(batch: Batch, r: InstanceRecord): void {
    this.instances.set(r.address, r);
    batch.put(
      key(K.instance, r.address),
      encode([r.template, r.version, r.codeHash, r.creator, r.height, r.time, r.name, r.merchant]),
    );
  }

  // ---------- reading ----------

  private async balance(a: string): Promise<bigint> {
    const raw = await this.db.get(key(K.balance, a));
    return raw === undefined ? 0n : (decode(raw, "Balance", 16) as bigint);
  }

  /** Total e-CNY issued, from the Issued events indexed. */
  async issued(): Promise<bigint> {
    const raw = await this.db.get(META_ISSUED);
    return raw === undefined ? 0n : (decode(raw, "Issued", 16) as bigint);
  }

  /** Every account the e-CNY events touched, with its balance by those events. */
  async balances(): Promise<{ account: string; balance: bigint }[]> {
    const out: { account: string; balance: bigint }[] = [];
    for await (const [k, v] of this.db.iterator({
      gte: Uint8Array.of(K.balance),
      lt: Uint8Array.of(K.balance + 1),
    }))
      out.push({
        account: Buffer.from(k.subarray(1)).toString("utf8"),
        balance: decode(v, "Balance", 16) as bigint,
      });
    return out;
  }

  instance(address: string): InstanceRecord | undefined {
    return this.instances.get(address);
  }

  /** Prepaid-card programmes (instances that opened with ProgrammeOpened) indexed up to `height`. */
  programmes(height: number): InstanceRecord[] {
    return [...this.instances.values()]
      .filter((r) => r.merchant !== null && r.height <= height)
      .sort((a, b) => a.height - b.height || (a.address < b.address ? -1 : 1));
  }

  /** The timestamp of block `height` (indexed). */
  async blockTime(height: number): Promise<number | undefined> {
    const raw = await this.db.get(key(K.blockTime, u64(height)));
    return raw === undefined ? undefined : Number(Buffer.from(raw).readBigUInt64BE(0));
  }

  /** The first indexed block at or after `time` (undefined: none yet). */
  async heightAtOrAfter(time: number): Promise<number | undefined> {
    for await (const k of this.db.keys({
      gte: key(K.time, u64(time)),
      lt: Uint8Array.of(K.time + 1),
      limit: 1,
    }))
      return Number(Buffer.from(k).readBigUInt64BE(9));
    return undefined;
  }

  /** The last indexed block at or before `time` (0 before the first). */
  async heightAtOrBefore(time: number): Promise<number> {
    for await (const k of this.db.keys({
      lt: key(K.time, u64(time + 1)),
      gte: Uint8Array.of(K.time),
      reverse: true,
      limit: 1,
    }))
      return Number(Buffer.from(k).readBigUInt64BE(9));
    return 0;
  }

  async tx(height: number, tx: number): Promise<IndexedTx | undefined> {
    const raw = await this.db.get(key(K.tx, pos(height, tx)));
    if (raw === undefined) return undefined;
    const S = "IndexedTx";
    const a = readArray(decode(raw, S, 4096), fieldAt(S, ""), 8);
    return {
      height,
      tx,
      time: (await this.blockTime(height)) ?? 0,
      txHash: `0x${toHex(readBytes(a[0], fieldAt(S, "txHash"), 32))}`,
      sender: readString(a[1], fieldAt(S, "sender"), { max: 42 }),
      to: readString(a[2], fieldAt(S, "to"), { max: 42 }),
      method: readString(a[3], fieldAt(S, "method"), { max: 64 }),
      value: readU64(a[4], fieldAt(S, "value")),
      success: readBool(a[5], fieldAt(S, "success")),
      errorCode: readNullable(a[6], (v) => readString(v, fieldAt(S, "errorCode"), { max: 64 })),
      events: Number(a[7]),
    };
  }

  /** A transaction's events as audit events (each read with the others of its transaction). */
  async txEvents(height: number, tx: number): Promise<AuditEvent[]> {
    const t = await this.tx(height, tx);
    if (!t) return [];
    const raw: RawEvent[] = [];
    for await (const v of this.db.values({
      gte: key(K.event, pos(height, tx)),
      lt: after(key(K.event, pos(height, tx))),
    })) {
      const S = "IndexedEvent";
      const a = readArray(decode(v, S, 64 * 1024), fieldAt(S, ""), 4);
      raw.push({
        emitter: readString(a[0], fieldAt(S, "emitter"), { max: 42 }),
        name: readString(a[1], fieldAt(S, "name"), { max: 64 }),
        data: readBytes(a[2], fieldAt(S, "data"), { max: 64 * 1024 }),
        topics: readArray(a[3], fieldAt(S, "topics")).map((x) =>
          readString(x, fieldAt(S, "topics"), { max: 80 }),
        ),
      });
    }
    return auditEvents({ height, tx, time: t.time, txHash: t.txHash, sender: t.sender }, raw);
  }

  /** Positions of keys under a prefix, in order, within heights [fromHeight, toHeight]. */
  private async *positions(
    prefix: Uint8Array,
    fromHeight: number,
    toHeight: number,
    o: { reverse?: boolean; limit?: number; after?: Position } = {},
  ): AsyncGenerator<Position> {
    if (toHeight < fromHeight) return;
    const lo = new Uint8Array(Buffer.concat([prefix, u64(fromHeight)]));
    const hi = new Uint8Array(Buffer.concat([prefix, u64(toHeight + 1)]));
    const start = o.after
      ? { gt: new Uint8Array(Buffer.concat([prefix, pos(o.after.height, o.after.tx, o.after.index)])) }
      : { gte: lo };
    for await (const k of this.db.keys({
      ...start,
      lt: hi,
      reverse: o.reverse ?? false,
      limit: o.limit ?? -1,
    }))
      yield readPos(k, prefix.byteLength);
  }

  /** Reads events at positions, a transaction's events once. */
  private async eventsAt(
    list: AsyncIterable<{ height: number; tx: number; index: number }>,
  ): Promise<AuditEvent[]> {
    const out: AuditEvent[] = [];
    let cacheKey = "";
    let cache: AuditEvent[] = [];
    for await (const p of list) {
      const k = `${p.height}:${p.tx}`;
      if (k !== cacheKey) {
        cache = await this.txEvents(p.height, p.tx);
        cacheKey = k;
      }
      const e = cache[p.index];
      if (e) out.push(e);
    }
    return out;
  }

  /** The events of `subject`'s audit chain in blocks [fromHeight, toHeight], in chain order. */
  subjectEvents(
    subject: string,
    fromHeight: number,
    toHeight: number,
    limit?: number,
    after?: Position,
  ): Promise<AuditEvent[]> {
    return this.eventsAt(
      this.positions(key(K.subject, subject, ZERO), fromHeight, toHeight, {
        ...(limit === undefined ? {} : { limit }),
        ...(after ? { after } : {}),
      }),
    );
  }

  /** The last event of `subject`'s chain below `height` (a range's anchor), if any. */
  async lastBefore(subject: string, height: number): Promise<AuditEvent | undefined> {
    if (height <= 1) return undefined;
    const [e] = await this.eventsAt(
      this.positions(key(K.subject, subject, ZERO), 0, height - 1, { reverse: true, limit: 1 }),
    );
    return e;
  }

  /** Events named `name` of a system contract (or of any VM contract: kind "vm") in [fromHeight, toHeight]. */
  namedEvents(
    kind: string,
    name: string,
    fromHeight: number,
    toHeight: number,
    limit?: number,
    after?: Position,
  ): Promise<AuditEvent[]> {
    return this.eventsAt(
      this.positions(key(K.name, kind, ZERO, name, ZERO), fromHeight, toHeight, {
        ...(limit === undefined ? {} : { limit }),
        ...(after ? { after } : {}),
      }),
    );
  }

  /** Every event in blocks [fromHeight, toHeight], in chain order (at most `limit`). */
  allEvents(fromHeight: number, toHeight: number, limit: number, after?: Position): Promise<AuditEvent[]> {
    return this.eventsAt(
      this.positions(Uint8Array.of(K.event), fromHeight, toHeight, { limit, ...(after ? { after } : {}) }),
    );
  }

  /** Transactions sent by or to `address` in blocks [fromHeight, toHeight] (failed ones too). */
  async accountTxs(
    address: string,
    fromHeight: number,
    toHeight: number,
    limit: number,
  ): Promise<IndexedTx[]> {
    const out: IndexedTx[] = [];
    const prefix = key(K.accountTx, address, ZERO);
    const lo = new Uint8Array(Buffer.concat([prefix, u64(fromHeight)]));
    const hi = new Uint8Array(Buffer.concat([prefix, u64(toHeight + 1)]));
    for await (const k of this.db.keys({ gte: lo, lt: hi, limit })) {
      const b = Buffer.from(k.buffer, k.byteOffset + prefix.byteLength, 12);
      const t = await this.tx(Number(b.readBigUInt64BE(0)), b.readUInt32BE(8));
      if (t) out.push(t);
    }
    return out;
  }

  /** A programme's products: id -> kind. */
  async products(programme: string): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    const prefix = key(K.product, programme, ZERO);
    for await (const [k, v] of this.db.iterator({ gte: prefix, lt: after(prefix) })) {
      const a = readArray(decode(v, "Product", 4096), fieldAt("Product", ""), 3);
      out.set(Buffer.from(k.buffer, k.byteOffset + prefix.byteLength, 4).readUInt32BE(0), String(a[1]));
    }
    return out;
  }

  /** Where each ProductAdded of a programme is (for exports' context). */
  async productEvents(programme: string, toHeight: number): Promise<AuditEvent[]> {
    return (await this.namedEvents("vm", "ProductAdded", 0, toHeight)).filter((e) => e.emitter === programme);
  }

  /** The institution of `address` at `height` (member.institution), or null. */
  async institutionAt(address: string, height: number): Promise<string | null> {
    const prefix = key(K.institution, address, ZERO);
    for await (const v of this.db.values({
      gte: prefix,
      lt: new Uint8Array(Buffer.concat([prefix, u64(height + 1)])),
      reverse: true,
      limit: 1,
    })) {
      const s = Buffer.from(v).toString("utf8");
      return s === "" ? null : s;
    }
    return null;
  }

  /** Every validator-set change up to `toHeight`, in chain order. */
  validatorChanges(toHeight: number): Promise<AuditEvent[]> {
    return this.eventsAt(this.positions(Uint8Array.of(K.validatorChange), 0, toHeight));
  }
}

function decodeInstance(address: string, raw: Uint8Array): InstanceRecord {
  const S = "IndexedInstance";
  const a = readArray(decode(raw, S, 4096), fieldAt(S, ""), 8);
  const s = (v: unknown, f: string) => readString(v, fieldAt(S, f), { max: 128 });
  return {
    address,
    template: s(a[0], "template"),
    version: s(a[1], "version"),
    codeHash: s(a[2], "codeHash"),
    creator: s(a[3], "creator"),
    height: Number(a[4]),
    time: Number(a[5]),
    name: readNullable(a[6], (v) => s(v, "name")),
    merchant: readNullable(a[7], (v) => s(v, "merchant")),
  };
}
