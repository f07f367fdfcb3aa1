// Loaded on demand (its own chunk): checks a block and a transaction in the browser with the
// chain's own rules (packages/types, packages/codec) and pure-JS SM2/SM3, trusting nothing the
// node says about them: the header hashes to the block hash, the validator set hashes to the
// header's validatorSetHash and is the one the set history leads to from genesis, a quorum of
// that set signed the commit certificate (every SM2 signature checked), the transaction's signed
// bytes are what the page shows, and its Merkle proof leads to the header's txRoot.
import { decode, verifyMerkleProof } from "@custos/codec";
import {
  blockHash,
  decodeCertificate,
  decodeHeader,
  decodeSignedTx,
  decodeValidatorSet,
  quorumSize,
  txSender,
  VALIDATOR_SET_KEY,
  validatorSetHash,
  verifyCommitCertificate,
  verifySignedTx,
  verifyStateProof,
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

export interface SetHistory {
  chainId: string;
  genesis: { name: string; publicKey: string }[];
  changes: {
    height: number;
    header: string;
    certificate: string;
    value: string;
    proof: { bucket: number; leaves: [string, string][]; siblings: string[] };
  }[];
}

/**
 * The validator set of block `height`, walked from the genesis set: each change's block must
 * name the set in force, be certified by it, and prove the new set in its state.
 */
function setAt(history: SetHistory, height: number): Uint8Array[] {
  let current = history.genesis.map((v) => fromHex(v.publicKey));
  for (const [i, c] of history.changes.entries()) {
    if (c.height >= height) break;
    const headerBytes = fromHex(c.header);
    const header = decodeHeader(headerBytes);
    const why = (w: string) => new Error(`validator-set change ${i} (block ${c.height}): ${w}`);
    if (header.height !== c.height) throw why(`its header is of height ${header.height}`);
    if (!bytesEqual(validatorSetHash(current), header.validatorSetHash))
      throw why("its header names another set than the one in force");
    verifyCommitCertificate(
      decodeCertificate(fromHex(c.certificate)),
      { chainId: history.chainId, height: c.height, blockHash: blockHash(headerBytes) },
      current,
    );
    const value = fromHex(c.value);
    verifyStateProof(header.stateRoot, VALIDATOR_SET_KEY, value, {
      bucket: c.proof.bucket,
      leaves: c.proof.leaves.map(([k, v]) => [fromHex(k), fromHex(v)]),
      siblings: c.proof.siblings.map(fromHex),
    });
    current = decodeValidatorSet(value).map((v) => v.publicKey);
  }
  return current;
}

export interface TxProof {
  txHash: string;
  proof: { leafIndex: number; treeSize: number; path: string[] };
  /** The signed transaction's bytes (custos_getTx `raw`) and what the page shows of it. */
  raw?: string;
  shown?: { from: string; to: string; method: string; value: string; args: unknown };
}

/** A decoded msgpack value as the node's JSON shows it: bigint -> string, bytes -> 0x hex, Map -> object. */
function asJson(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return `0x${toHex(v)}`;
  if (Array.isArray(v)) return v.map(asJson);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), asJson(x)]));
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asJson(x)]));
  return v;
}

/** The transaction's own bytes: their SM3 is its hash, its sender signed them, they say what the page shows. */
function checkTx(tx: TxProof): Check {
  return attempt("transaction", () => {
    if (!tx.raw) throw new Error("the node gave no signed bytes for this transaction");
    const stx = decodeSignedTx(fromHex(tx.raw));
    if (hx(stx.hash) !== tx.txHash.toLowerCase()) throw new Error(`its bytes hash to ${hx(stx.hash)}`);
    if (!verifySignedTx(stx)) throw new Error("the sender's SM2 signature does not verify");
    const s = tx.shown;
    if (s) {
      const args =
        stx.tx.args.byteLength === 0 ? null : asJson(decode(stx.tx.args, "Payload", stx.tx.args.byteLength));
      const differs =
        txSender(stx.tx) !== s.from
          ? "sender"
          : stx.tx.to !== s.to
            ? "recipient"
            : stx.tx.method !== s.method
              ? "method"
              : stx.tx.value.toString() !== s.value
                ? "value"
                : JSON.stringify(args) !== JSON.stringify(s.args)
                  ? "arguments"
                  : undefined;
      if (differs) throw new Error(`the page shows another ${differs} than the signed bytes hold`);
    }
    return `SM3 of the signed body is the tx hash; ${txSender(stx.tx).slice(0, 10)}… signed it (SM2); it holds what is shown`;
  });
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
export function verifyEvidence(
  ev: Evidence,
  expectedHash: string,
  tx?: TxProof,
  history?: SetHistory,
): Check[] {
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
      let from = "";
      if (history) {
        if (history.chainId !== ev.chainId) throw new Error(`the set history is of chain ${history.chainId}`);
        const walked = setAt(history, ev.height);
        if (walked.length !== keys.length || walked.some((k, i) => !bytesEqual(k, keys[i] as Uint8Array)))
          throw new Error("the set given is not the one the history from genesis leads to");
        const changes = history.changes.filter((c) => c.height < ev.height).length;
        from = `, walked from the genesis set (${hx(validatorSetHash(history.genesis.map((v) => fromHex(v.publicKey)))).slice(0, 18)}…) through ${changes} certified change(s)`;
      }
      return `${keys.length} validators, hash ${hx(header.validatorSetHash).slice(0, 18)}… as in the header${from}`;
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
  if (tx) checks.push(checkTx(tx));
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
