import { existsSync } from "node:fs";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { decode, encode, fieldAt, readArray, readBytes, readSafeU64, readUint } from "@custos/codec";
import {
  type Block,
  type CommitCertificate,
  decodeBlock,
  decodeCertificate,
  decodeHeader,
  encodeCertificate,
  encodeGenesis,
  type Genesis,
  type GenesisValidator,
  genesisHeader,
  type Header,
  makeBlock,
  type StateChange,
  type StateProof,
  StateTree,
  VALIDATOR_SET_KEY,
  type WriteSet,
} from "@custos/types";
import {
  bytesEqual,
  CustosError,
  compareBytes,
  errorMessage,
  type Logger,
  toHex,
  toLatin1,
} from "@custos/utils";
import { Level } from "level";
import { crashPoint } from "../crashPoint.js";
import type { StateReader } from "../state/overlay.js";
import { Bucket, META_BASE, META_GENESIS, META_HEAD, META_WINDOW } from "./buckets.js";
import type { LedgerErrorCode } from "./errors.js";
import { HeadMark, RECOVERY } from "./headMark.js";
import { decodeProof, encodeProof } from "./proofCodec.js";
import {
  type Batch,
  bytesKey,
  type Db,
  heightBytes,
  Repository,
  SlabBatch,
  type ValueCodec,
} from "./repository.js";
import { levelOptions } from "./writeBuffer.js";

/** Who signs the next block and who may connect, as the state after a block says. */
export interface HeadSets {
  /** The validator set of the next block (height + 1). */
  validators: GenesisValidator[];
  validatorSetHash: Uint8Array;
  /** The observers allowed to connect. */
  observers: GenesisValidator[];
}

/**
 * How the sets follow the state: the system contract that keeps them (validators) knows where and
 * how; the ledger only asks, at open and after each block.
 */
export interface SetTracker {
  load(read: (key: Uint8Array) => Promise<Uint8Array | undefined>): Promise<HeadSets>;
  after(prev: HeadSets, writes: WriteSet): HeadSets;
}

export interface ChainHead extends HeadSets {
  height: number;
  hash: Uint8Array;
  header: Header;
}

export interface TxPosition {
  height: number;
  index: number;
}

/** Everything one committed block changes, written in one atomic, fsync'd batch. */
export interface BlockCommit {
  block: Block;
  /** The exact encoded block. */
  blockBytes: Uint8Array;
  receipts: Uint8Array[];
  writes: WriteSet;
  certificate: CommitCertificate;
}

export interface LedgerOptions {
  dir: string;
  genesis: Genesis;
  /** The state genesis starts with (members, ...). */
  genesisWrites: WriteSet;
  /** State entries kept in memory. */
  cacheEntries?: number;
  /** LevelDB's memtable in bytes (writeBuffer.ts); LevelDB's default (4 MiB) when absent. */
  writeBufferBytes?: number;
}

export interface LedgerModules {
  log: Logger;
  sets: SetTracker;
}

// ---------- the records of each bucket ----------

const blockCodec: ValueCodec<Block> = {
  encode: () => {
    throw new Error("a block is stored as the exact bytes it was decided in (putBinary)");
  },
  decode: decodeBlock,
};
const heightCodec: ValueCodec<number> = {
  encode: (h) => encode(BigInt(h)),
  decode: (raw) => readSafeU64(decode(raw, "HeightRef", 16), fieldAt("HeightRef", "")),
};
const certificateCodec: ValueCodec<CommitCertificate> = {
  encode: encodeCertificate,
  decode: decodeCertificate,
};
const positionCodec: ValueCodec<TxPosition> = {
  encode: (p) => encode([BigInt(p.height), p.index]),
  decode: (raw) => {
    const a = readArray(decode(raw, "TxPosition", 32), fieldAt("TxPosition", ""), 2);
    return {
      height: readSafeU64(a[0], fieldAt("TxPosition", "height")),
      index: readUint(a[1], fieldAt("TxPosition", "index")),
    };
  },
};
const receiptsCodec: ValueCodec<Uint8Array[]> = {
  encode: (r) => encode(r),
  decode: (raw) =>
    readArray(decode(raw, "Receipts", 64 * 1024 * 1024), fieldAt("Receipts", "")).map((r, i) =>
      readBytes(r, fieldAt("Receipts", `[${i}]`)),
    ),
};
const headCodec: ValueCodec<{ height: number; hash: Uint8Array }> = {
  encode: (h) => encode([BigInt(h.height), h.hash]),
  decode: (raw) => {
    const a = readArray(decode(raw, "Head", 1024), fieldAt("Head", ""), 2);
    return {
      height: readSafeU64(a[0], fieldAt("Head", "height")),
      hash: readBytes(a[1], fieldAt("Head", "hash"), 32),
    };
  },
};

/** A write set as the state tree takes it: one object per write set, so that its work is kept. */
const changesOf = new WeakMap<WriteSet, StateChange[]>();
function stateChanges(writes: WriteSet): StateChange[] {
  let c = changesOf.get(writes);
  if (!c) {
    c = [...writes.values()];
    changesOf.set(writes, c);
  }
  return c;
}

/** A validator-set change: [header bytes, certificate bytes, the new set's value, its state proof]. */
export type SetHistoryRecord = [Uint8Array, Uint8Array, Uint8Array, StateProof];
const historyCodec: ValueCodec<SetHistoryRecord> = {
  encode: ([h, c, v, p]) => encode([h, c, v, encodeProof(p)]),
  decode: (raw) => {
    const a = readArray(decode(raw, "SetHistory", 64 * 1024 * 1024), fieldAt("SetHistory", ""), 4);
    return [
      readBytes(a[0], fieldAt("SetHistory", "header")),
      readBytes(a[1], fieldAt("SetHistory", "certificate")),
      readBytes(a[2], fieldAt("SetHistory", "value")),
      decodeProof(a[3], "proof"),
    ];
  },
};
/** The replay window a snapshot brought: [height, tx hashes, header bytes] per block. */
const windowCodec: ValueCodec<[number, Uint8Array[], Uint8Array][]> = {
  encode: (w) => encode(w.map(([h, hashes, header]) => [BigInt(h), Buffer.concat(hashes), header])),
  decode: (raw) =>
    readArray(decode(raw, "Window", 256 * 1024 * 1024), fieldAt("Window", "")).map((e) => {
      const a = readArray(e, fieldAt("Window", "[]"), 3);
      const all = readBytes(a[1], fieldAt("Window", "hashes"));
      const hashes: Uint8Array[] = [];
      for (let i = 0; i + 32 <= all.byteLength; i += 32) hashes.push(all.slice(i, i + 32));
      return [
        readSafeU64(a[0], fieldAt("Window", "height")),
        hashes,
        readBytes(a[2], fieldAt("Window", "header")),
      ];
    }),
};

const STATE_FROM = new Uint8Array([Bucket.state]);
const STATE_TO = new Uint8Array([Bucket.state + 1]);
/** State keys of contracts named 0x...: [state bucket, "0", "x"] up to [state bucket, "0", "y"]. */
const CONTRACT_KEYS_FROM = new Uint8Array([Bucket.state, 0x30, 0x78]);
const CONTRACT_KEYS_TO = new Uint8Array([Bucket.state, 0x30, 0x79]);

function lowerBound(sorted: readonly string[], x: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as string) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The chain on LevelDB, one typed repository per bucket. A block, its certificate, its receipts,
 * its tx index entries, its state writes and the new head are one batch written with fsync: after
 * a crash the ledger holds every committed block whole and nothing of a block that was not; and
 * it never opens below the head it last committed (ledger/headMark.ts).
 */
export class Ledger implements StateReader {
  private readonly blocks: Repository<number, Block>;
  private readonly blockHeights: Repository<Uint8Array, number>;
  private readonly certificates: Repository<number, CommitCertificate>;
  private readonly positions: Repository<Uint8Array, TxPosition>;
  private readonly receipts: Repository<number, Uint8Array[]>;
  /**
   * State entries read or written, by hex key (null = absent). The node is the ledger's only
   * writer, so a commit brings the cache up to date (reads are synchronous: none can race it).
   */
  private readonly cache = new Map<string, Uint8Array | null>();
  /**
   * Keys (latin1 strings, so string order is byte order) of every VM contract's state, sorted:
   * LevelDB has no synchronous iterator, and a contract's prefix scan runs inside a VM call.
   */
  private readonly contractKeys: string[] = [];
  /** Tx hashes of the last `window` blocks: the only blocks a valid tx could be replayed into. */
  private readonly recent = new Map<string, number>();
  private readonly recentByHeight = new Map<number, string[]>();
  private readonly recentHeaders = new Map<number, Uint8Array>();
  private readonly history: Repository<number, SetHistoryRecord>;
  private baseHeight = 0;
  private headState!: ChainHead;
  /** The state tree (the state root's rule), over every state entry; updated at each commit. */
  private tree = new StateTree();
  private readonly window: number;
  private readonly cacheEntries: number;

  private constructor(
    private readonly db: Db,
    private readonly mark: HeadMark,
    private readonly opts: LedgerOptions,
    private readonly modules: LedgerModules,
  ) {
    this.blocks = new Repository(db, Bucket.block, heightBytes, blockCodec);
    this.blockHeights = new Repository(db, Bucket.blockHash, bytesKey, heightCodec);
    this.certificates = new Repository(db, Bucket.certificate, heightBytes, certificateCodec);
    this.positions = new Repository(db, Bucket.txIndex, bytesKey, positionCodec);
    this.receipts = new Repository(db, Bucket.receipts, heightBytes, receiptsCodec);
    this.history = new Repository(db, Bucket.setHistory, heightBytes, historyCodec);
    this.window = opts.genesis.blockLimitWindow;
    this.cacheEntries = opts.cacheEntries ?? 500_000;
  }

  /**
   * Opens (creating on first use) the ledger under `dir` for `genesis`. A ledger made from a
   * different genesis is refused with GENESIS_MISMATCH; a damaged or rolled-back one with
   * LEDGER_CORRUPT or LEDGER_ROLLED_BACK, before LevelDB can drop anything.
   */
  static async open(opts: LedgerOptions, modules: LedgerModules): Promise<Ledger> {
    const { dir } = opts;
    const mark = await HeadMark.check(dir);
    const db = new Level<Uint8Array, Uint8Array>(dir, levelOptions(opts.writeBufferBytes));
    try {
      await db.open();
    } catch (cause) {
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_OPEN_FAILED",
        `cannot open the ledger at ${dir}: ${errorMessage((cause as { cause?: unknown }).cause ?? cause)}`,
        { dir },
        { cause },
      );
    }
    const ledger = new Ledger(db, mark, opts, modules);
    try {
      await ledger.load();
      return ledger;
    } catch (err) {
      await mark.close().catch(() => {});
      await db.close().catch(() => {});
      throw err;
    }
  }

  private async load(): Promise<void> {
    const { genesis } = this.opts;
    const genesisBytes = encodeGenesis(genesis);
    const stored = await this.db.get(META_GENESIS);
    if (stored === undefined) {
      const batch = this.db.batch();
      const block = this.putGenesis(batch);
      this.putState(batch, this.opts.genesisWrites);
      batch.put(META_HEAD, headCodec.encode({ height: 0, hash: block.hash }));
      await batch.write({ sync: true });
      this.modules.log.info("ledger created", {
        chainId: genesis.chainId,
        genesisHash: `0x${toHex(block.hash)}`,
      });
    } else if (!bytesEqual(stored, genesisBytes)) {
      throw new CustosError<LedgerErrorCode>(
        "GENESIS_MISMATCH",
        `the ledger at ${this.opts.dir} belongs to another genesis`,
        {
          dir: this.opts.dir,
        },
      );
    }
    const head = await this.readHead();
    await this.mark.verify(head, async (h) => (await this.blocks.get(h))?.hash);
    // the state as stored must be the state the head block certifies
    const entries: [Uint8Array, Uint8Array][] = [];
    for await (const [k, v] of this.db.iterator({ gte: STATE_FROM, lt: STATE_TO })) entries.push([k, v]);
    this.tree = StateTree.from(entries);
    if (!bytesEqual(this.tree.root, head.header.stateRoot))
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_CORRUPT",
        `the state in ${this.opts.dir} (root 0x${toHex(this.tree.root)}) is not the state block ${head.height} certifies (0x${toHex(head.header.stateRoot)}). ${RECOVERY}`,
        { dir: this.opts.dir, height: head.height },
      );
    await this.mark.open(head);
    this.headState = head;
    for await (const key of this.db.keys({ gte: CONTRACT_KEYS_FROM, lt: CONTRACT_KEYS_TO })) {
      this.contractKeys.push(toLatin1(key));
    }
    const base = await this.db.get(META_BASE);
    this.baseHeight = base === undefined ? 0 : heightCodec.decode(base);
    const from = Math.max(1, head.height - this.window + 1);
    if (from < this.baseHeight) {
      // started from a snapshot: the window below it came with it (headers and tx hashes)
      const raw = await this.db.get(META_WINDOW);
      for (const [h, hashes, headerBytes] of raw === undefined ? [] : windowCodec.decode(raw))
        if (h >= from && h < this.baseHeight) this.remember(h, hashes.map(toHex), headerBytes);
    }
    for (let h = Math.max(from, this.baseHeight); h <= head.height; h++) {
      const block = await this.getBlock(h);
      if (block === undefined)
        throw new CustosError<LedgerErrorCode>("LEDGER_CORRUPT", `block ${h} is missing`);
      this.remember(
        h,
        block.txs.map((t) => toHex(t.hash)),
        block.headerBytes,
      );
    }
    this.modules.log.info("ledger opened", { height: head.height, hash: `0x${toHex(head.hash)}` });
  }

  /** Genesis and block 0 (every ledger holds them, whatever its base). */
  private putGenesis(batch: Batch): Block {
    const { genesis, genesisWrites } = this.opts;
    const stateRoot = StateTree.from(
      [...genesisWrites.values()].flatMap((w) =>
        w.value === null ? [] : [[w.key, w.value] as [Uint8Array, Uint8Array]],
      ),
    ).root;
    const { block, bytes } = makeBlock(genesisHeader(genesis, stateRoot), []);
    batch.put(META_GENESIS, encodeGenesis(genesis));
    this.blocks.putBinary(batch, 0, bytes);
    this.blockHeights.put(batch, block.hash, 0);
    this.receipts.put(batch, 0, []);
    return block;
  }

  /**
   * Creates the ledger at `opts.dir` from a verified snapshot (snapshot/snapshot.ts) at height H:
   * genesis, block H and its certificate, the state at H, the replay window below H and the
   * validator-set history. The state is written first and its tree checked against block H's
   * state root (SNAPSHOT_INVALID otherwise, and nothing is left); the head is written last, in the
   * directory's final place only once all of it is durable. The ledger then holds blocks from H on
   * (its base): it syncs H + 1 onwards like any node.
   */
  static async createFromSnapshot(
    opts: LedgerOptions,
    modules: LedgerModules,
    snap: {
      blockBytes: Uint8Array;
      certificate: Uint8Array;
      window: { headerBytes: Uint8Array; txHashes: Uint8Array[] }[];
      setChanges: {
        height: number;
        headerBytes: Uint8Array;
        certificate: Uint8Array;
        value: Uint8Array;
        proof: StateProof;
      }[];
    },
    entries: Iterable<[Uint8Array, Uint8Array]>,
  ): Promise<{ height: number; entries: number }> {
    const { dir } = opts;
    if (existsSync(join(dir, "CURRENT")))
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_EXISTS",
        `${dir} already holds a ledger: a snapshot only starts an empty one`,
        { dir },
      );
    const block = decodeBlock(snap.blockBytes);
    const height = block.header.height;
    const work = `${dir}.importing`;
    await rm(work, { recursive: true, force: true });
    const db = new Level<Uint8Array, Uint8Array>(work, { keyEncoding: "view", valueEncoding: "view" });
    await db.open();
    const ledger = new Ledger(db, undefined as unknown as HeadMark, opts, modules);
    let count = 0;
    try {
      const tree: [Uint8Array, Uint8Array][] = [];
      let batch = db.batch();
      let last: Uint8Array | undefined;
      for (const [k, v] of entries) {
        if (k[0] !== Bucket.state || (last !== undefined && compareBytes(last, k) >= 0))
          throw new CustosError<LedgerErrorCode>(
            "SNAPSHOT_INVALID",
            "snapshot: state keys out of order or outside the state",
          );
        last = k;
        tree.push([k, v]);
        batch.put(k, v);
        if (++count % 10_000 === 0) {
          await batch.write();
          batch = db.batch();
        }
      }
      const root = StateTree.from(tree).root;
      if (!bytesEqual(root, block.header.stateRoot))
        throw new CustosError<LedgerErrorCode>(
          "SNAPSHOT_INVALID",
          `snapshot: its state (root 0x${toHex(root)}) is not the state block ${height} certifies (0x${toHex(block.header.stateRoot)})`,
          { height },
        );
      ledger.putGenesis(batch);
      ledger.blocks.putBinary(batch, height, snap.blockBytes);
      ledger.blockHeights.put(batch, block.hash, height);
      ledger.certificates.putBinary(batch, height, snap.certificate);
      block.txs.forEach((tx, index) => {
        ledger.positions.put(batch, tx.hash, { height, index });
      });
      for (const c of snap.setChanges)
        ledger.history.put(batch, c.height, [c.headerBytes, c.certificate, c.value, c.proof]);
      batch.put(
        META_WINDOW,
        windowCodec.encode(
          snap.window.map(
            (w) =>
              [decodeHeader(w.headerBytes).height, w.txHashes, w.headerBytes] as [
                number,
                Uint8Array[],
                Uint8Array,
              ],
          ),
        ),
      );
      batch.put(META_BASE, heightCodec.encode(height));
      batch.put(META_HEAD, headCodec.encode({ height, hash: block.hash }));
      await batch.write({ sync: true });
    } catch (err) {
      await db.close().catch(() => {});
      await rm(work, { recursive: true, force: true });
      throw err;
    }
    await db.close();
    await rm(dir, { recursive: true, force: true });
    await rename(work, dir);
    return { height, entries: count };
  }

  /**
   * Deletes the oldest blocks (with their certificates, receipts and tx index entries) so that at
   * most `keep` blocks below the head remain; a few hundred per call, so that a commit is never
   * held up for long. Block 0 and the validator-set history stay. Returns how many were deleted.
   * Not fsynced: a prune lost in a crash leaves the blocks and the old base, and is done again.
   */
  async prune(keep: number, most = 256): Promise<number> {
    const to = Math.min(this.headState.height - keep, Math.max(this.baseHeight, 1) + most);
    const from = Math.max(this.baseHeight, 1);
    if (to <= from) return 0;
    const batch = this.db.batch();
    for (let h = from; h < to; h++) {
      const block = await this.getBlock(h);
      if (block) {
        for (const tx of block.txs) batch.del(this.positions.key(tx.hash));
        batch.del(this.blockHeights.key(block.hash));
      }
      batch.del(this.blocks.key(h));
      batch.del(this.certificates.key(h));
      batch.del(this.receipts.key(h));
    }
    batch.put(META_BASE, heightCodec.encode(to));
    await batch.write();
    this.baseHeight = to;
    return to - from;
  }

  private async readHead(): Promise<ChainHead> {
    const raw = await this.db.get(META_HEAD);
    if (raw === undefined)
      throw new CustosError<LedgerErrorCode>("LEDGER_CORRUPT", "the ledger has no head record");
    const { height, hash } = headCodec.decode(raw);
    const block = await this.blocks.get(height);
    if (block === undefined)
      throw new CustosError<LedgerErrorCode>("LEDGER_CORRUPT", `the head block ${height} is missing`);
    if (!bytesEqual(block.hash, hash))
      throw new CustosError<LedgerErrorCode>("LEDGER_CORRUPT", `the head block ${height} has another hash`);
    const sets = await this.modules.sets.load((key) => this.db.get(key));
    return { height, hash, header: block.header, ...sets };
  }

  get head(): ChainHead {
    return this.headState;
  }

  // ---------- state ----------

  /** State (or any) entry, through the cache. */
  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.getById(toHex(key), key);
  }

  /**
   * Read synchronously: a state read is a LevelDB lookup in memory or the page cache (tens of
   * microseconds at most), and the asynchronous read paid more than that in handing it to the
   * thread pool and back (a thread wake-up per read, measured on a busy two-core machine).
   */
  getById(id: string, key: Uint8Array): Promise<Uint8Array | undefined> {
    try {
      return Promise.resolve(this.getSyncById(id, key));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.getSyncById(toHex(key), key);
  }

  getSyncById(id: string, key: Uint8Array): Uint8Array | undefined {
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const value = this.db.getSync(key);
    this.cachePut(id, value ?? null);
    return value;
  }

  scanSync(prefix: Uint8Array, start: Uint8Array, limit: number): Array<[Uint8Array, Uint8Array]> {
    const p = toLatin1(prefix);
    const s = toLatin1(start);
    const keys = this.contractKeys;
    let i = lowerBound(keys, s > p ? s : p);
    const out: Array<[Uint8Array, Uint8Array]> = [];
    for (; i < keys.length && out.length < limit && (keys[i] as string).startsWith(p); i++) {
      const key = new Uint8Array(Buffer.from(keys[i] as string, "latin1"));
      const value = this.getSync(key);
      if (value !== undefined) out.push([key, value]);
    }
    return out;
  }

  /** The state root these writes would give on top of the head's state. */
  stateRootAfter(writes: WriteSet): Uint8Array {
    return this.tree.rootAfter(stateChanges(writes));
  }

  /** A proof of `key`'s value (or absence) against the head's state root. */
  stateProof(key: Uint8Array): StateProof {
    return this.tree.prove(key);
  }

  private putState(batch: Batch, writes: WriteSet): void {
    for (const w of writes.values()) {
      if (w.value === null) batch.del(w.key);
      else batch.put(w.key, w.value);
    }
  }

  private indexContractKey(key: Uint8Array, present: boolean): void {
    if (compareBytes(key, CONTRACT_KEYS_FROM) < 0 || compareBytes(key, CONTRACT_KEYS_TO) >= 0) return;
    const k = toLatin1(key);
    const i = lowerBound(this.contractKeys, k);
    const there = this.contractKeys[i] === k;
    if (present && !there) this.contractKeys.splice(i, 0, k);
    else if (!present && there) this.contractKeys.splice(i, 1);
  }

  private cachePut(id: string, value: Uint8Array | null): void {
    if (this.cache.size >= this.cacheEntries && !this.cache.has(id)) {
      this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(id, value);
  }

  // ---------- replay window ----------

  /** Whether a tx with this hash is in one of the last `blockLimitWindow` blocks. */
  isRecentlyCommitted(hash: Uint8Array): boolean {
    return this.recent.has(toHex(hash));
  }

  private remember(height: number, hashes: string[], headerBytes?: Uint8Array): void {
    this.recentByHeight.set(height, hashes);
    if (headerBytes) this.recentHeaders.set(height, headerBytes);
    for (const h of hashes) this.recent.set(h, height);
    const old = this.recentByHeight.get(height - this.window);
    if (old) {
      for (const h of old) this.recent.delete(h);
      this.recentByHeight.delete(height - this.window);
      this.recentHeaders.delete(height - this.window);
    }
  }

  /**
   * The replay window below the head (the blockLimitWindow - 1 blocks before it): their header
   * bytes and tx hashes, oldest first, as a snapshot carries them. Read right after a commit.
   */
  recentWindow(): { headerBytes: Uint8Array; txHashes: Uint8Array[] }[] {
    const out: { headerBytes: Uint8Array; txHashes: Uint8Array[] }[] = [];
    const head = this.headState.height;
    for (let h = Math.max(1, head - this.window + 1); h < head; h++) {
      const headerBytes = this.recentHeaders.get(h);
      const hashes = this.recentByHeight.get(h);
      if (!headerBytes || !hashes)
        throw new CustosError<LedgerErrorCode>(
          "LEDGER_CORRUPT",
          `block ${h} of the replay window is not at hand`,
        );
      out.push({ headerBytes, txHashes: hashes.map((x) => Buffer.from(x, "hex")) });
    }
    return out;
  }

  /** Every validator-set change recorded up to the head, oldest first (see Bucket.setHistory). */
  async setChanges(): Promise<{ height: number; record: SetHistoryRecord }[]> {
    const out: { height: number; record: SetHistoryRecord }[] = [];
    for await (const [k, v] of this.db.iterator({
      gte: Uint8Array.of(Bucket.setHistory),
      lt: Uint8Array.of(Bucket.setHistory + 1),
    }))
      out.push({
        height: Number(new DataView(k.buffer, k.byteOffset + 1, 8).getBigUint64(0)),
        record: historyCodec.decode(v),
      });
    return out;
  }

  /** The state entries (full keys) as of now, in key order, from one LevelDB snapshot taken at the call. */
  stateEntries(): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.db.iterator({ gte: STATE_FROM, lt: STATE_TO });
  }

  /** The lowest height whose block this ledger holds (0 unless it started from a snapshot). */
  get base(): number {
    return this.baseHeight;
  }

  // ---------- blocks ----------

  async getBlockBytes(height: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.headState.height) return undefined;
    if (height > 0 && height < this.baseHeight) return undefined;
    return this.blocks.getBinary(height);
  }

  async getBlock(height: number): Promise<Block | undefined> {
    const bytes = await this.getBlockBytes(height);
    return bytes === undefined ? undefined : decodeBlock(bytes);
  }

  /**
   * A block's index entries (its hash's height, its transactions' positions) are in LevelDB a
   * moment before the head moves to it (commit writes the batch, then sets the head): a reader
   * that came in between would find a transaction in a block that getBlock does not serve yet. The
   * index answers for blocks up to the head only, as every other read does.
   */
  private upToHead<T extends number | { height: number }>(v: T | undefined): T | undefined {
    if (v === undefined) return undefined;
    return (typeof v === "number" ? v : v.height) <= this.headState.height ? v : undefined;
  }

  async heightOf(hash: Uint8Array): Promise<number | undefined> {
    return this.upToHead(await this.blockHeights.get(hash));
  }

  getCertificateBytes(height: number): Promise<Uint8Array | undefined> {
    return this.certificates.getBinary(height);
  }

  getCertificate(height: number): Promise<CommitCertificate | undefined> {
    return this.certificates.get(height);
  }

  async txPosition(hash: Uint8Array): Promise<TxPosition | undefined> {
    return this.upToHead(await this.positions.get(hash));
  }

  getReceipts(height: number): Promise<Uint8Array[] | undefined> {
    return this.receipts.get(height);
  }

  /** Appends the next block. Throws LEDGER_NOT_NEXT unless it extends the head. */
  async commit(c: BlockCommit): Promise<void> {
    const h = c.block.header;
    if (h.height !== this.headState.height + 1 || !bytesEqual(h.prevHash, this.headState.hash)) {
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_NOT_NEXT",
        `block ${h.height} does not extend the head ${this.headState.height}`,
      );
    }
    const batch = new SlabBatch(this.db.batch());
    this.blocks.putBinary(batch, h.height, c.blockBytes);
    this.blockHeights.put(batch, c.block.hash, h.height);
    this.certificates.put(batch, h.height, c.certificate);
    this.receipts.put(batch, h.height, c.receipts);
    c.block.txs.forEach((tx, index) => {
      this.positions.put(batch, tx.hash, { height: h.height, index });
    });
    this.putState(batch, c.writes);
    batch.put(META_HEAD, headCodec.encode({ height: h.height, hash: c.block.hash }));
    // the state tree follows now (a failed write below stops the node anyway); a block that
    // changes the validator set is recorded with a proof of the new set, for snapshots
    this.tree.apply(stateChanges(c.writes));
    const sets = this.modules.sets.after(this.headState, c.writes);
    if (!bytesEqual(sets.validatorSetHash, this.headState.validatorSetHash)) {
      const value = c.writes.get(toHex(VALIDATOR_SET_KEY))?.value;
      if (value)
        this.history.put(batch, h.height, [
          c.block.headerBytes,
          encodeCertificate(c.certificate),
          value,
          this.tree.prove(VALIDATOR_SET_KEY),
        ]);
    }
    crashPoint("ledger.commit.beforeWrite");
    try {
      await batch.write({ sync: true });
    } catch (cause) {
      // A failed write to the ledger is not recoverable here: the caller stops the node.
      this.modules.log.error("ledger write failed", { height: h.height, error: String(cause) });
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_WRITE_FAILED",
        `writing block ${h.height} failed`,
        { height: h.height },
        { cause },
      );
    }
    for (const [id, w] of c.writes) {
      this.cachePut(id, w.value);
      this.indexContractKey(w.key, w.value !== null);
    }
    this.remember(
      h.height,
      c.block.txs.map((t) => toHex(t.hash)),
      c.block.headerBytes,
    );
    this.headState = { height: h.height, hash: c.block.hash, header: h, ...sets };
    crashPoint("ledger.commit.afterWrite");
    // after LevelDB has the block durably and readers see it
    await this.mark.record(this.headState);
  }

  /**
   * Every entry of the ledger (blocks, indexes, state, meta) in key order, as of one moment: the
   * iterator reads a LevelDB snapshot taken when it starts, so commits that happen meanwhile are
   * not seen (a backup of a running node is consistent). Also gives the head in that snapshot.
   */
  async *entries(): AsyncGenerator<[Uint8Array, Uint8Array]> {
    for await (const [k, v] of this.db.iterator()) yield [k, v];
  }

  /** The head a META_HEAD entry (from `entries`) names. */
  static headOf(value: Uint8Array): { height: number; hash: Uint8Array } {
    return headCodec.decode(value);
  }

  static readonly HEAD_KEY = META_HEAD;

  async close(): Promise<void> {
    await this.mark.close();
    await this.db.close();
  }
}
