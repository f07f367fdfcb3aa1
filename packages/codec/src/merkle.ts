import { sm3 } from "@custos/crypto";
import { bytesEqual, CustosError } from "@custos/utils";

/**
 * Binary SM3 Merkle trees shaped as in RFC 6962 / RFC 9162 (Certificate Transparency), with SM3
 * in place of SHA-256: leaf = SM3(0x00 || data), node = SM3(0x01 || left || right), and a tree
 * of n leaves splits at the largest power of two below n. The prefixes keep an inner node from
 * passing as a leaf; the split (no duplicated last leaf) keeps two different leaf lists from
 * sharing a root. The root of no leaves is SM3 of nothing.
 */
const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

export function merkleLeafHash(data: Uint8Array): Uint8Array {
  return sm3(LEAF, data);
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sm3(NODE, left, right);
}

/** Hashes level by level; a lone last node moves up unchanged, which is the RFC 6962 shape. */
function levels(leaves: readonly Uint8Array[]): Uint8Array[][] {
  const out: Uint8Array[][] = [leaves.map(merkleLeafHash)];
  let level = out[0] as Uint8Array[];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      next.push(
        i + 1 < level.length
          ? nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array)
          : (level[i] as Uint8Array),
      );
    }
    out.push(next);
    level = next;
  }
  return out;
}

export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sm3();
  const l = levels(leaves);
  return (l[l.length - 1] as Uint8Array[])[0] as Uint8Array;
}

export interface MerkleProof {
  leafIndex: number;
  treeSize: number;
  /** Sibling hashes from the leaf up. */
  path: Uint8Array[];
}

export function merkleProof(leaves: readonly Uint8Array[], index: number): MerkleProof {
  return merkleProofs(leaves, [index])[0] as MerkleProof;
}

/** Proofs of several leaves of one tree (an audit export's entries of one block), hashing it once. */
export function merkleProofs(leaves: readonly Uint8Array[], indexes: readonly number[]): MerkleProof[] {
  for (const index of indexes)
    if (!Number.isInteger(index) || index < 0 || index >= leaves.length) {
      throw new CustosError("INVALID_ARGUMENT", `leaf index ${index} outside a tree of ${leaves.length}`);
    }
  const tree = levels(leaves);
  return indexes.map((index) => {
    const path: Uint8Array[] = [];
    let i = index;
    for (const level of tree) {
      if (level.length === 1) break;
      const sibling = i ^ 1;
      if (sibling < level.length) path.push(level[sibling] as Uint8Array);
      i >>= 1;
    }
    return { leafIndex: index, treeSize: leaves.length, path };
  });
}

/** RFC 9162 §2.1.3.2: does `data` sit at `proof.leafIndex` of the tree with this root? */
export function verifyMerkleProof(data: Uint8Array, proof: MerkleProof, root: Uint8Array): boolean {
  const { leafIndex, treeSize, path } = proof;
  if (
    !Number.isSafeInteger(leafIndex) ||
    !Number.isSafeInteger(treeSize) ||
    leafIndex < 0 ||
    leafIndex >= treeSize
  ) {
    return false;
  }
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = merkleLeafHash(data);
  for (const p of path) {
    if (!(p instanceof Uint8Array) || p.byteLength !== 32 || sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && bytesEqual(r, root);
}
