import type { MerkleProof } from "@custos/codec";
import { decode } from "@custos/codec";
import type { Block, CommitCertificate, ContractEvent, Receipt, SignedTx } from "@custos/types";
import { toHex } from "@custos/utils";
import { senderAddress } from "../execution/senders.js";

/** A decoded msgpack value as JSON: bigint -> decimal string, bytes -> 0x hex, Map -> object. */
export function jsonValue(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return `0x${toHex(v)}`;
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), jsonValue(x)]));
  if (v !== null && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

function decodedOrNull(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return null;
  try {
    return jsonValue(decode(bytes, "Payload", bytes.byteLength));
  } catch {
    return null;
  }
}

export const hex = (b: Uint8Array) => `0x${toHex(b)}`;

export function certificateJson(c: CommitCertificate): Record<string, unknown> {
  return {
    height: c.height,
    view: c.view,
    blockHash: hex(c.blockHash),
    signatures: c.signatures.map((s) => ({ validator: s.validator, signature: hex(s.signature) })),
  };
}

export function blockJson(b: Block, cert: CommitCertificate | undefined): Record<string, unknown> {
  const h = b.header;
  return {
    hash: hex(b.hash),
    height: h.height,
    prevHash: hex(h.prevHash),
    timestamp: h.timestamp,
    proposer: h.proposer,
    view: h.view,
    txRoot: hex(h.txRoot),
    receiptRoot: hex(h.receiptRoot),
    stateRoot: hex(h.stateRoot),
    validatorSetHash: hex(h.validatorSetHash),
    txCount: b.txs.length,
    txs: b.txs.map((t) => hex(t.hash)),
    certificate: cert ? certificateJson(cert) : null,
  };
}

export function txJson(stx: SignedTx): Record<string, unknown> {
  const t = stx.tx;
  return {
    hash: hex(stx.hash),
    chainId: t.chainId,
    from: senderAddress(t.sender),
    sender: hex(t.sender),
    to: t.to,
    method: t.method,
    args: decodedOrNull(t.args),
    value: t.value.toString(),
    memo: t.memo,
    nonce: hex(t.nonce),
    blockLimit: t.blockLimit,
    signature: hex(stx.signature),
  };
}

export function eventJson(e: ContractEvent): Record<string, unknown> {
  return { emitter: e.emitter, name: e.name, data: decodedOrNull(e.data) };
}

/** A contract-event filter: the emitter (contract address or system contract name) and the name. */
export interface EventFilter {
  emitter?: string;
  name?: string;
}

/**
 * The events of one block's receipts that match `filter`, in order, as subscribers and
 * custos_getEvents give them: `{ blockHeight, txHash, emitter, name, data }`.
 */
export function blockEvents(
  height: number,
  receipts: readonly Receipt[],
  filter: EventFilter,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const r of receipts)
    for (const e of r.events) {
      if ((filter.emitter && e.emitter !== filter.emitter) || (filter.name && e.name !== filter.name))
        continue;
      out.push({ blockHeight: height, txHash: hex(r.txHash), ...eventJson(e) });
    }
  return out;
}

export function receiptJson(r: Receipt): Record<string, unknown> {
  return {
    txHash: hex(r.txHash),
    success: r.success,
    gasUsed: r.gasUsed.toString(),
    output: decodedOrNull(r.output),
    events: r.events.map(eventJson),
    errorCode: r.errorCode,
    errorMessage: r.errorMessage,
  };
}

export function proofJson(p: MerkleProof, root: Uint8Array): Record<string, unknown> {
  return { leafIndex: p.leafIndex, treeSize: p.treeSize, path: p.path.map(hex), root: hex(root) };
}
