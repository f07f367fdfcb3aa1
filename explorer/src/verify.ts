// Loaded on demand (its own chunk): checks a block and a transaction in the browser with the
// chain's own rules (packages/types, packages/codec) and pure-JS SM2/SM3, trusting nothing the
// node says about them: the header hashes to the block hash, the validator set hashes to the
// header's validatorSetHash, a quorum of that set signed the commit certificate (every SM2
// signature checked), and the transaction's Merkle proof leads to the header's txRoot.
import { verifyMerkleProof } from "@custos/codec";
import {
  blockHash,
  decodeCertificate,
  decodeHeader,
  quorumSize,
  validatorSetHash,
  verifyCommitCertificate,
} from "@custos/types";
import { bytesEqual, fromHex, toHex } from "@custos/utils";

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Evidence {
  height: number;
  hash: string;
  chainId: string;
  header: string;
  certificate: string | null;
  validators: { name: string; publicKey: string }[];
}

export interface TxProof {
  txHash: string;
  proof: { leafIndex: number; treeSize: number; path: string[] };
}

const hx = (b: Uint8Array) => `0x${toHex(b)}`;

function attempt(name: string, fn: () => string): Check {
  try {
    return { name, ok: true, detail: fn() };
  } catch (e) {
    return { name, ok: false, detail: (e as Error).message };
  }
}

/** Every check of `ev` (and of `tx` in that block); verified when all pass. */
export function verifyEvidence(ev: Evidence, expectedHash: string, tx?: TxProof): Check[] {
  const checks: Check[] = [];
  const headerBytes = fromHex(ev.header);
  const header = decodeHeader(headerBytes);
  const hash = blockHash(headerBytes);
  checks.push(
    attempt("block hash", () => {
      if (hx(hash) !== expectedHash.toLowerCase())
        throw new Error(`the header hashes to ${hx(hash)}, not the block ${expectedHash}`);
      if (header.height !== ev.height) throw new Error(`the header is of height ${header.height}`);
      if (header.chainId !== ev.chainId) throw new Error(`the header is of chain ${header.chainId}`);
      return `SM3 of the header bytes is ${hx(hash)}`;
    }),
  );
  const keys = ev.validators.map((v) => fromHex(v.publicKey));
  checks.push(
    attempt("validator set", () => {
      if (!bytesEqual(validatorSetHash(keys), header.validatorSetHash))
        throw new Error("the validator set given does not hash to the header's validatorSetHash");
      return `${keys.length} validators, hash ${hx(header.validatorSetHash).slice(0, 18)}… as in the header`;
    }),
  );
  checks.push(
    attempt("commit certificate", () => {
      if (!ev.certificate) throw new Error("the node gave no certificate for this block");
      const cert = decodeCertificate(fromHex(ev.certificate));
      verifyCommitCertificate(cert, { chainId: ev.chainId, height: ev.height, blockHash: hash }, keys);
      const names = cert.signatures.map((s) => ev.validators[s.validator]?.name ?? `#${s.validator}`);
      return `${cert.signatures.length} valid SM2 signatures (quorum ${quorumSize(keys.length)} of ${keys.length}): ${names.join(", ")}`;
    }),
  );
  if (tx)
    checks.push(
      attempt("inclusion proof", () => {
        const p = {
          leafIndex: tx.proof.leafIndex,
          treeSize: tx.proof.treeSize,
          path: tx.proof.path.map(fromHex),
        };
        if (!verifyMerkleProof(fromHex(tx.txHash), p, header.txRoot))
          throw new Error("the Merkle proof does not lead to the header's txRoot");
        return `leaf ${p.leafIndex} of ${p.treeSize}, ${p.path.length} sibling hashes up to txRoot ${hx(header.txRoot).slice(0, 18)}…`;
      }),
    );
  return checks;
}
