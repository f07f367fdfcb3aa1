import { decode, encode, fieldAt, readArray, readBytes, readSafeU64, readUint } from "@custos/codec";
import {
  type Block,
  type CommitCertificate,
  decodeBlock,
  decodeCertificate,
  encodeCertificate,
  encodeGenesis,
  type Genesis,
  type GenesisValidator,
  genesisHeader,
  type Header,
  makeBlock,
} from "@custos/types";
import { bytesEqual, CustosError, type Logger, toHex } from "@custos/utils";
import { Level } from "level";
import { compareBytes, nextStateRoot, type StateReader, type WriteSet } from "../state/overlay.js";
import {
  decodeValidatorSet,
  OBSERVER_SET_KEY,
  observerSetOf,
  setHash,
  VALIDATOR_SET_KEY,
  validatorSetOf,
} from "../system/validators.js";
import { Bucket, heightKey, META_GENESIS, META_HEAD, prefixed } from "./keys.js";

export interface ChainHead {
  height: number;
  hash: Uint8Array;
  header: Header;
  /** The validator set of the next block (height + 1), as the state after this block says. */
  validators: GenesisValidator[];
  validatorSetHash: Uint8Array;
  /** The observers allowed to connect after this block. */
  observers: GenesisValidator[];
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

const ZERO32 = new Uint8Array(32);
/** State keys of contracts named 0x...: [state bucket, "0", "x"] up to [state bucket, "0", "y"]. */
const CONTRACT_KEYS_FROM = new Uint8Array([Bucket.state, 0x30, 0x78]);
const CONTRACT_KEYS_TO = new Uint8Array([Bucket.state, 0x30, 0x79]);
const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

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
 * The chain on LevelDB. A block, its certificate, its receipts, its tx index entries, its state
 * writes and the new head are one batch written with fsync: after a crash the ledger holds
 * every committed block whole and nothing of a block that was not.
 */
export class Ledger implements StateReader {
  /**
   * State entries read or written, by hex key (null = absent). The node is the ledger's only
   * writer, so a commit brings the cache up to date; a read that raced a commit is not cached.
   */
  private readonly cache = new Map<string, Uint8Array | null>();
  private generation = 0;
  /**
   * Keys (latin1 strings, so string order is byte order) of every VM contract's state, sorted:
   * LevelDB has no synchronous iterator, and a contract's prefix scan runs inside a VM call.
   */
  private readonly contractKeys: string[] = [];
  /** Tx hashes of the last `window` blocks: the only blocks a valid tx could be replayed into. */
  private readonly recent = new Map<string, number>();
  private readonly recentByHeight = new Map<number, string[]>();

  private constructor(
    private readonly db: Level<Uint8Array, Uint8Array>,
    private headState: ChainHead,
    private readonly log: Logger,
    private readonly window: number,
    private readonly cacheEntries: number,
  ) {}

  /**
   * Opens (creating on first use) the ledger under `dir` for `genesis`. A ledger made from a
   * different genesis is refused with GENESIS_MISMATCH.
   */
  static async open(
    dir: string,
    genesis: Genesis,
    genesisWrites: WriteSet,
    log: Logger,
    cacheEntries = 500_000,
  ): Promise<Ledger> {
    const db = new Level<Uint8Array, Uint8Array>(dir, { keyEncoding: "view", valueEncoding: "view" });
    try {
      await db.open();
    } catch (cause) {
      throw new CustosError("LEDGER_OPEN_FAILED", `cannot open the ledger at ${dir}`, { dir }, { cause });
    }
    const genesisBytes = encodeGenesis(genesis);
    const stored = await db.get(META_GENESIS);
    if (stored === undefined) {
      const stateRoot = nextStateRoot(ZERO32, genesisWrites);
      const { block, bytes } = makeBlock(genesisHeader(genesis, stateRoot), []);
      const batch = db.batch();
      batch.put(META_GENESIS, genesisBytes);
      batch.put(heightKey(Bucket.block, 0), bytes);
      batch.put(prefixed(Bucket.blockHash, block.hash), encode(0n));
      batch.put(heightKey(Bucket.receipts, 0), encode([]));
      for (const w of genesisWrites.values()) {
        if (w.value === null) batch.del(w.key);
        else batch.put(w.key, w.value);
      }
      batch.put(META_HEAD, encode([0n, block.hash]));
      await batch.write({ sync: true });
      log.info("ledger created", { chainId: genesis.chainId, genesisHash: `0x${toHex(block.hash)}` });
    } else if (!bytesEqual(stored, genesisBytes)) {
      await db.close();
      throw new CustosError("GENESIS_MISMATCH", `the ledger at ${dir} belongs to another genesis`, { dir });
    }
    const head = await Ledger.readHead(db, genesis);
    const ledger = new Ledger(db, head, log, genesis.blockLimitWindow, cacheEntries);
    for await (const key of db.keys({ gte: CONTRACT_KEYS_FROM, lt: CONTRACT_KEYS_TO })) {
      ledger.contractKeys.push(latin1(key));
    }
    for (let h = Math.max(1, head.height - genesis.blockLimitWindow + 1); h <= head.height; h++) {
      const block = await ledger.getBlock(h);
      if (block === undefined) throw new CustosError("LEDGER_CORRUPT", `block ${h} is missing`);
      ledger.remember(
        h,
        block.txs.map((t) => toHex(t.hash)),
      );
    }
    log.info("ledger opened", { height: head.height, hash: `0x${toHex(head.hash)}` });
    return ledger;
  }

  private static async readHead(db: Level<Uint8Array, Uint8Array>, genesis: Genesis): Promise<ChainHead> {
    const raw = await db.get(META_HEAD);
    if (raw === undefined) throw new CustosError("LEDGER_CORRUPT", "the ledger has no head record");
    const a = readArray(decode(raw, "Head", 1024), fieldAt("Head", ""), 2);
    const height = readSafeU64(a[0], fieldAt("Head", "height"));
    const hash = readBytes(a[1], fieldAt("Head", "hash"), 32);
    const blockBytes = await db.get(heightKey(Bucket.block, height));
    if (blockBytes === undefined)
      throw new CustosError("LEDGER_CORRUPT", `the head block ${height} is missing`);
    const block = decodeBlock(blockBytes);
    if (!bytesEqual(block.hash, hash))
      throw new CustosError("LEDGER_CORRUPT", `the head block ${height} has another hash`);
    const validators = validatorSetOf(await db.get(VALIDATOR_SET_KEY), genesis);
    const observers = observerSetOf(await db.get(OBSERVER_SET_KEY), genesis);
    return {
      height,
      hash,
      header: block.header,
      validators,
      validatorSetHash: setHash(validators),
      observers,
    };
  }

  get head(): ChainHead {
    return this.headState;
  }

  /** State (or any) entry, through the cache. */
  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    const id = toHex(key);
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const generation = this.generation;
    const value = await this.db.get(key);
    if (generation === this.generation) this.cachePut(id, value ?? null);
    return value;
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    const id = toHex(key);
    const cached = this.cache.get(id);
    if (cached !== undefined) return cached ?? undefined;
    const value = this.db.getSync(key);
    this.cachePut(id, value ?? null);
    return value;
  }

  scanSync(prefix: Uint8Array, start: Uint8Array, limit: number): Array<[Uint8Array, Uint8Array]> {
    const p = latin1(prefix);
    const s = latin1(start);
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

  private indexContractKey(key: Uint8Array, present: boolean): void {
    if (compareBytes(key, CONTRACT_KEYS_FROM) < 0 || compareBytes(key, CONTRACT_KEYS_TO) >= 0) return;
    const k = latin1(key);
    const i = lowerBound(this.contractKeys, k);
    const there = this.contractKeys[i] === k;
    if (present && !there) this.contractKeys.splice(i, 0, k);
    else if (!present && there) this.contractKeys.splice(i, 1);
  }

  /** Whether a tx with this hash is in one of the last `blockLimitWindow` blocks. */
  isRecentlyCommitted(hash: Uint8Array): boolean {
    return this.recent.has(toHex(hash));
  }

  private cachePut(id: string, value: Uint8Array | null): void {
    if (this.cache.size >= this.cacheEntries && !this.cache.has(id)) {
      this.cache.delete(this.cache.keys().next().value as string);
    }
    this.cache.set(id, value);
  }

  private remember(height: number, hashes: string[]): void {
    this.recentByHeight.set(height, hashes);
    for (const h of hashes) this.recent.set(h, height);
    const old = this.recentByHeight.get(height - this.window);
    if (old) {
      for (const h of old) this.recent.delete(h);
      this.recentByHeight.delete(height - this.window);
    }
  }

  async getBlockBytes(height: number): Promise<Uint8Array | undefined> {
    if (!Number.isSafeInteger(height) || height < 0 || height > this.headState.height) return undefined;
    return this.db.get(heightKey(Bucket.block, height));
  }

  async getBlock(height: number): Promise<Block | undefined> {
    const bytes = await this.getBlockBytes(height);
    return bytes === undefined ? undefined : decodeBlock(bytes);
  }

  async heightOf(hash: Uint8Array): Promise<number | undefined> {
    const raw = await this.db.get(prefixed(Bucket.blockHash, hash));
    return raw === undefined
      ? undefined
      : readSafeU64(decode(raw, "HeightRef", 16), fieldAt("HeightRef", ""));
  }

  async getCertificateBytes(height: number): Promise<Uint8Array | undefined> {
    return this.db.get(heightKey(Bucket.certificate, height));
  }

  async getCertificate(height: number): Promise<CommitCertificate | undefined> {
    const raw = await this.db.get(heightKey(Bucket.certificate, height));
    return raw === undefined ? undefined : decodeCertificate(raw);
  }

  async txPosition(hash: Uint8Array): Promise<TxPosition | undefined> {
    const raw = await this.db.get(prefixed(Bucket.txIndex, hash));
    if (raw === undefined) return undefined;
    const a = readArray(decode(raw, "TxPosition", 32), fieldAt("TxPosition", ""), 2);
    return {
      height: readSafeU64(a[0], fieldAt("TxPosition", "height")),
      index: readUint(a[1], fieldAt("TxPosition", "index")),
    };
  }

  async getReceipts(height: number): Promise<Uint8Array[] | undefined> {
    const raw = await this.db.get(heightKey(Bucket.receipts, height));
    if (raw === undefined) return undefined;
    return readArray(decode(raw, "Receipts", 64 * 1024 * 1024), fieldAt("Receipts", "")).map((r, i) =>
      readBytes(r, fieldAt("Receipts", `[${i}]`)),
    );
  }

  /** Appends the next block. Throws LEDGER_NOT_NEXT unless it extends the head. */
  async commit(c: BlockCommit): Promise<void> {
    const h = c.block.header;
    if (h.height !== this.headState.height + 1 || !bytesEqual(h.prevHash, this.headState.hash)) {
      throw new CustosError(
        "LEDGER_NOT_NEXT",
        `block ${h.height} does not extend the head ${this.headState.height}`,
      );
    }
    const batch = this.db.batch();
    batch.put(heightKey(Bucket.block, h.height), c.blockBytes);
    batch.put(prefixed(Bucket.blockHash, c.block.hash), encode(BigInt(h.height)));
    batch.put(heightKey(Bucket.certificate, h.height), encodeCertificate(c.certificate));
    batch.put(heightKey(Bucket.receipts, h.height), encode(c.receipts));
    c.block.txs.forEach((tx, index) => {
      batch.put(prefixed(Bucket.txIndex, tx.hash), encode([BigInt(h.height), index]));
    });
    for (const w of c.writes.values()) {
      if (w.value === null) batch.del(w.key);
      else batch.put(w.key, w.value);
    }
    batch.put(META_HEAD, encode([BigInt(h.height), c.block.hash]));
    try {
      await batch.write({ sync: true });
    } catch (cause) {
      // A failed write to the ledger is not recoverable here: the caller stops the node.
      this.log.error("ledger write failed", { height: h.height, error: String(cause) });
      throw new CustosError(
        "LEDGER_WRITE_FAILED",
        `writing block ${h.height} failed`,
        { height: h.height },
        { cause },
      );
    }
    this.generation++;
    for (const [id, w] of c.writes) {
      this.cachePut(id, w.value);
      this.indexContractKey(w.key, w.value !== null);
    }
    this.remember(
      h.height,
      c.block.txs.map((t) => toHex(t.hash)),
    );
    const changed = c.writes.get(toHex(VALIDATOR_SET_KEY));
    const validators = changed?.value != null ? decodeValidatorSet(changed.value) : this.headState.validators;
    const observersChanged = c.writes.get(toHex(OBSERVER_SET_KEY));
    this.headState = {
      height: h.height,
      hash: c.block.hash,
      header: h,
      validators,
      validatorSetHash: changed ? setHash(validators) : this.headState.validatorSetHash,
      observers:
        observersChanged?.value != null
          ? decodeValidatorSet(observersChanged.value)
          : this.headState.observers,
    };
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
