import { sm3 } from "@custos/crypto";
import { bytesEqual, CustosError, toHex } from "@custos/utils";

/**
 * The state commitment (consensus rule, header.stateRoot): a Merkle tree over the whole state,
 * so that a verifier holding a certified header can check one entry (a state proof), or a whole
 * state snapshot, without replaying the chain.
 *
 * - Every state entry (its full key `k` in the ledger's state key space, its value `v`) is a
 *   leaf `(SM3(k), SM3(v))`.
 * - Leaves fall into one of 2^STATE_BUCKET_BITS buckets by the first bits of SM3(k). A bucket's
 *   hash is SM3(0x01 || count (u32 BE) || its leaves sorted by SM3(k), each SM3(k) || SM3(v)); an
 *   empty bucket's hash is 32 zero bytes.
 * - The buckets are the leaves of a complete binary Merkle tree: node = SM3(0x02 || left || right).
 *   Its root is the state root.
 *
 * Why buckets and not a sparse Merkle tree of depth 256: a block's writes rehash only their
 * buckets and 12 levels above them (a few thousand hashes for a full block), where a sparse tree
 * would take ~256 per write; a proof is the bucket's leaves (64 bytes each) and 12 sibling
 * hashes. With a million entries a bucket holds ~250 leaves (16 KB): still a small proof. The
 * number of buckets is part of the rule.
 */
export const STATE_BUCKET_BITS = 12;
const BUCKETS = 1 << STATE_BUCKET_BITS;
const EMPTY = new Uint8Array(32);
const BUCKET_TAG = new Uint8Array([1]);
const NODE_TAG = new Uint8Array([2]);

export function bucketOf(keyHash: Uint8Array): number {
  return (((keyHash[0] as number) << 8) | (keyHash[1] as number)) >>> (16 - STATE_BUCKET_BITS);
}

/** A bucket's leaves, sorted by key hash, as the rule hashes them. */
export function bucketHash(leaves: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  if (leaves.length === 0) return EMPTY;
  const body = new Uint8Array(4 + leaves.length * 64);
  new DataView(body.buffer).setUint32(0, leaves.length);
  leaves.forEach(([k, v], i) => {
    body.set(k, 4 + i * 64);
    body.set(v, 4 + i * 64 + 32);
  });
  return sm3(BUCKET_TAG, body);
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sm3(NODE_TAG, left, right);
}

/** What proves one key's value (or its absence) against a state root. */
export interface StateProof {
  bucket: number;
  /** Every leaf of the bucket, sorted by key hash: [SM3(key), SM3(value)]. */
  leaves: [Uint8Array, Uint8Array][];
  /** Sibling hashes from the bucket up to the root (STATE_BUCKET_BITS of them). */
  siblings: Uint8Array[];
}

/**
 * Checks that `key` has `value` (null: is absent) in the state whose root is `root`. Throws
 * STATE_PROOF_INVALID saying why.
 */
export function verifyStateProof(
  root: Uint8Array,
  key: Uint8Array,
  value: Uint8Array | null,
  proof: StateProof,
): void {
  const fail = (why: string): never => {
    throw new CustosError("STATE_PROOF_INVALID", `state proof: ${why}`);
  };
  const kh = sm3(key);
  if (proof.bucket !== bucketOf(kh)) fail("the key is in another bucket");
  if (proof.siblings.length !== STATE_BUCKET_BITS) fail(`${proof.siblings.length} siblings`);
  for (let i = 1; i < proof.leaves.length; i++)
    if (Buffer.compare(proof.leaves[i - 1]?.[0] as Uint8Array, proof.leaves[i]?.[0] as Uint8Array) >= 0)
      fail("the bucket's leaves are not sorted");
  for (const [k] of proof.leaves) if (bucketOf(k) !== proof.bucket) fail("a leaf of another bucket");
  const leaf = proof.leaves.find(([k]) => bytesEqual(k, kh));
  if (value === null && leaf) fail("the key is present");
  if (value !== null && !leaf) fail("the key is absent");
  if (value !== null && leaf && !bytesEqual(leaf[1], sm3(value))) fail("the value differs");
  let h = bucketHash(proof.leaves);
  let index = proof.bucket;
  for (const s of proof.siblings) {
    h = index & 1 ? nodeHash(s, h) : nodeHash(h, s);
    index >>>= 1;
  }
  if (!bytesEqual(h, root)) fail(`the root is 0x${toHex(h)}, not 0x${toHex(root)}`);
}

interface NodeStore {
  get(i: number): Uint8Array;
  set(i: number, v: Uint8Array): void;
}

/** One write to the state: the full key, and the new value (null deletes). */
export interface StateChange {
  key: Uint8Array;
  value: Uint8Array | null;
}

/**
 * The tree in memory: each bucket's leaves by key hash, and every node of the bucket tree.
 * `rootAfter` computes the root a set of writes would give without changing anything; `apply`
 * makes them part of the tree (after the ledger stored them).
 */
export class StateTree {
  /** bucket -> (hex SM3(key) -> SM3(value)) */
  private readonly buckets: Map<string, Uint8Array>[] = Array.from({ length: BUCKETS }, () => new Map());
  /** Heap layout: node 1 is the root, node i has children 2i and 2i+1; buckets at BUCKETS + b. */
  private readonly nodes: Uint8Array[] = new Array(2 * BUCKETS);

  constructor() {
    for (let b = 0; b < BUCKETS; b++) this.nodes[BUCKETS + b] = EMPTY;
    for (let i = BUCKETS - 1; i >= 1; i--)
      this.nodes[i] = nodeHash(this.nodes[2 * i] as Uint8Array, this.nodes[2 * i + 1] as Uint8Array);
  }

  /** Builds a tree from every entry of a state (a ledger at open, a snapshot). */
  static from(entries: Iterable<[Uint8Array, Uint8Array]>): StateTree {
    const t = new StateTree();
    const touched = new Set<number>();
    for (const [k, v] of entries) {
      const kh = sm3(k);
      const b = bucketOf(kh);
      (t.buckets[b] as Map<string, Uint8Array>).set(toHex(kh), sm3(v));
      touched.add(b);
    }
    t.rehash(touched, t.store);
    return t;
  }

  get root(): Uint8Array {
    return this.nodes[1] as Uint8Array;
  }

  get size(): number {
    let n = 0;
    for (const b of this.buckets) n += b.size;
    return n;
  }

  private static leavesOf(map: Map<string, Uint8Array>): [Uint8Array, Uint8Array][] {
    return [...map.keys()].sort().map((k) => [Buffer.from(k, "hex"), map.get(k) as Uint8Array]);
  }

  /** Recomputes the touched buckets and the paths above them, reading and writing through `nodes`. */
  private rehash(touched: Iterable<number>, nodes: NodeStore, buckets = this.buckets): void {
    let level = new Set<number>();
    for (const b of touched) {
      nodes.set(BUCKETS + b, bucketHash(StateTree.leavesOf(buckets[b] as Map<string, Uint8Array>)));
      level.add((BUCKETS + b) >>> 1);
    }
    while (level.size > 0) {
      const up = new Set<number>();
      for (const i of level) {
        nodes.set(i, nodeHash(nodes.get(2 * i), nodes.get(2 * i + 1)));
        if (i > 1) up.add(i >>> 1);
      }
      level = up;
    }
  }

  private get store(): NodeStore {
    return {
      get: (i) => this.nodes[i] as Uint8Array,
      set: (i, v) => {
        this.nodes[i] = v;
      },
    };
  }

  private changedBuckets(changes: Iterable<StateChange>): Map<number, Map<string, Uint8Array>> {
    const out = new Map<number, Map<string, Uint8Array>>();
    for (const c of changes) {
      const kh = sm3(c.key);
      const b = bucketOf(kh);
      let m = out.get(b);
      if (!m) {
        m = new Map(this.buckets[b]);
        out.set(b, m);
      }
      if (c.value === null) m.delete(toHex(kh));
      else m.set(toHex(kh), sm3(c.value));
    }
    return out;
  }

  /**
   * The root these writes would give, without applying them. The work is kept (for the same
   * `changes` object, on the same tree state) so that applying them afterwards costs nothing more.
   */
  rootAfter(changes: Iterable<StateChange>): Uint8Array {
    return this.prepare(changes).root;
  }

  private prepared = new WeakMap<
    object,
    {
      version: number;
      root: Uint8Array;
      changed: Map<number, Map<string, Uint8Array>>;
      nodes: Map<number, Uint8Array>;
    }
  >();
  private version = 0;

  private prepare(changes: Iterable<StateChange>) {
    const kept = this.prepared.get(changes);
    if (kept && kept.version === this.version) return kept;
    const changed = this.changedBuckets(changes);
    const nodes = new Map<number, Uint8Array>();
    if (changed.size > 0) {
      const buckets = [...this.buckets];
      for (const [b, m] of changed) buckets[b] = m;
      this.rehash(
        changed.keys(),
        { get: (i) => nodes.get(i) ?? (this.nodes[i] as Uint8Array), set: (i, v) => nodes.set(i, v) },
        buckets,
      );
    }
    const p = { version: this.version, root: nodes.get(1) ?? this.root, changed, nodes };
    this.prepared.set(changes, p);
    return p;
  }

  /** Makes the writes part of the tree; returns the new root. */
  apply(changes: Iterable<StateChange>): Uint8Array {
    const p = this.prepare(changes);
    for (const [b, m] of p.changed) this.buckets[b] = m;
    for (const [i, v] of p.nodes) this.nodes[i] = v;
    this.version++;
    return this.root;
  }

  /** The proof of `key` (present or absent) against the current root. */
  prove(key: Uint8Array): StateProof {
    const b = bucketOf(sm3(key));
    const siblings: Uint8Array[] = [];
    for (let i = BUCKETS + b; i > 1; i >>>= 1) siblings.push(this.nodes[i ^ 1] as Uint8Array);
    return { bucket: b, leaves: StateTree.leavesOf(this.buckets[b] as Map<string, Uint8Array>), siblings };
  }
}
