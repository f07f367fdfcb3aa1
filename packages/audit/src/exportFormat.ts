import { ADDRESS_RE, type StateProof, SUBJECT_RE } from "@custos/types";
import { toHex } from "@custos/utils";
import { auditError } from "./errors.js";
import { checkTarget, type TraceTarget } from "./trace.js";

/**
 * An audit export: what a third party needs to check a trace, a report or a balance check with
 * no node (packages/audit/README.md describes every field). Bytes are 0x hex of the exact bytes
 * that were signed or hashed; amounts are decimal strings of fen.
 */
export const EXPORT_FORMAT = "custos-audit-export";
export const EXPORT_VERSION = 1;

export type ExportQuery =
  | { kind: "trace"; target: TraceTarget; from: number | null; to: number | null }
  | { kind: "report"; programmes: string[]; from: number | null; to: number | null; threshold: bigint }
  | { kind: "reconciliation"; accounts: { account: string; contract: boolean }[] };

/** An event of an entry: the entry's id and the event's index in its receipt. */
export interface EventRef {
  entry: number;
  event: number;
}

/** A block's header and its commit certificate, as the chain stored them. */
export interface ExportBlock {
  height: number;
  header: Uint8Array;
  certificate: Uint8Array;
}

/** One committed transaction with its receipt and the inclusion proofs of both in its block. */
export interface ExportEntry {
  id: number;
  height: number;
  /** Its index in the block (the leaf index of both proofs). */
  index: number;
  /** The signed transaction's bytes ([body, signature]). */
  tx: Uint8Array;
  receipt: Uint8Array;
  /** Leaves in the block (both trees have one per transaction). */
  treeSize: number;
  txProof: Uint8Array[];
  receiptProof: Uint8Array[];
}

/** A value in the state at the export's height and its proof against that block's stateRoot. */
export interface ProvenValue {
  value: Uint8Array | null;
  proof: StateProof;
}

/**
 * One audit chain, complete from `anchor` (the subject's last event before `from`; none: the
 * chain's start) through every link up to the export's height, where `head` proves the state's
 * head of the chain.
 */
export interface ExportChain {
  subject: string;
  /** Why it is here: the trace's target, a programme of a report, a card (whose programme). */
  role: "target" | "programme" | "card";
  from: number | null;
  anchor: EventRef | null;
  links: EventRef[];
  head: ProvenValue;
}

export type StateItem =
  | ({ what: "validator-set" } & ProvenValue)
  | ({ what: "supply" } & ProvenValue)
  | ({ what: "balance"; account: string } & ProvenValue);

/** Events that identify something the figures need (a programme's opening, a product's kind). */
export interface ContextItem {
  role: "programme" | "product";
  ref: EventRef;
}

export interface AuditExport {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  chainId: string;
  /** SM3 of the canonical genesis (block 0's prevHash). */
  genesisHash: Uint8Array;
  /** The export's height: chains end and state is proven here. */
  height: number;
  createdAt: number;
  query: ExportQuery;
  blocks: ExportBlock[];
  entries: ExportEntry[];
  /** Every change of the validator set from genesis up to the height, in chain order. */
  validatorChanges: EventRef[];
  chains: ExportChain[];
  context: ContextItem[];
  state: StateItem[];
  /** The figures as the node computed them (trace, report or balance check), as JSON. */
  result: unknown;
}

// ---------- to JSON ----------

const hex = (b: Uint8Array) => `0x${toHex(b)}`;

function provenJson(p: ProvenValue): Record<string, unknown> {
  return {
    value: p.value === null ? null : hex(p.value),
    proof: {
      bucket: p.proof.bucket,
      leaves: p.proof.leaves.map(([k, v]) => [hex(k), hex(v)]),
      siblings: p.proof.siblings.map(hex),
    },
  };
}

function queryJson(q: ExportQuery): Record<string, unknown> {
  if (q.kind === "report") return { ...q, threshold: q.threshold.toString() };
  return { ...q };
}

export function exportToJson(x: AuditExport): Record<string, unknown> {
  return {
    format: x.format,
    version: x.version,
    chainId: x.chainId,
    genesisHash: hex(x.genesisHash),
    height: x.height,
    createdAt: x.createdAt,
    query: queryJson(x.query),
    blocks: x.blocks.map((b) => ({
      height: b.height,
      header: hex(b.header),
      certificate: hex(b.certificate),
    })),
    entries: x.entries.map((e) => ({
      id: e.id,
      height: e.height,
      index: e.index,
      tx: hex(e.tx),
      receipt: hex(e.receipt),
      treeSize: e.treeSize,
      txProof: e.txProof.map(hex),
      receiptProof: e.receiptProof.map(hex),
    })),
    validatorChanges: x.validatorChanges,
    chains: x.chains.map((c) => ({
      subject: c.subject,
      role: c.role,
      from: c.from,
      anchor: c.anchor,
      links: c.links,
      head: provenJson(c.head),
    })),
    context: x.context,
    state: x.state.map((s) => ({
      what: s.what,
      ...("account" in s ? { account: s.account } : {}),
      ...provenJson(s),
    })),
    result: x.result,
  };
}

// ---------- from JSON (untrusted) ----------

class Reader {
  constructor(readonly path: string) {}
  fail(why: string, at = this.path): never {
    throw auditError("AUDIT_EXPORT_INVALID", `the export's ${at || "document"} ${why}`, { field: at });
  }
  at(p: string | number): Reader {
    return new Reader(typeof p === "number" ? `${this.path}[${p}]` : this.path ? `${this.path}.${p}` : p);
  }
}

function obj(v: unknown, r: Reader): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) r.fail("must be an object");
  return v as Record<string, unknown>;
}
function arr(v: unknown, r: Reader, max = 10_000_000): unknown[] {
  if (!Array.isArray(v) || v.length > max) r.fail(`must be an array (at most ${max} items)`);
  return v as unknown[];
}
function int(v: unknown, r: Reader, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max)
    r.fail(`must be an integer in [${min}, ${max}]`);
  return v as number;
}
function str(v: unknown, r: Reader, re?: RegExp): string {
  if (typeof v !== "string" || (re && !re.test(v))) r.fail(`must be a string${re ? ` matching ${re}` : ""}`);
  return v as string;
}
function bytes(v: unknown, r: Reader, length?: number, max = 64 * 1024 * 1024): Uint8Array {
  if (typeof v !== "string" || !/^0x([0-9a-f]{2})*$/.test(v) || (v.length - 2) / 2 > max)
    r.fail("must be 0x-prefixed lowercase hex of whole bytes");
  const b = new Uint8Array(Buffer.from((v as string).slice(2), "hex"));
  if (length !== undefined && b.byteLength !== length) r.fail(`must be ${length} bytes`);
  return b;
}
function nullableTime(v: unknown, r: Reader): number | null {
  return v === null || v === undefined ? null : int(v, r);
}

function ref(v: unknown, r: Reader): EventRef {
  const o = obj(v, r);
  return { entry: int(o.entry, r.at("entry")), event: int(o.event, r.at("event"), 0, 1024) };
}

function proven(v: unknown, r: Reader): ProvenValue {
  const o = obj(v, r);
  const p = obj(o.proof, r.at("proof"));
  return {
    value: o.value === null ? null : bytes(o.value, r.at("value"), undefined, 1 << 20),
    proof: {
      bucket: int(p.bucket, r.at("proof.bucket"), 0, 1 << 16),
      leaves: arr(p.leaves, r.at("proof.leaves"), 1 << 20).map((l, i) => {
        const pair = arr(l, r.at(`proof.leaves[${i}]`), 2);
        if (pair.length !== 2) r.fail("must be [keyHash, valueHash]", `${r.path}.proof.leaves[${i}]`);
        return [
          bytes(pair[0], r.at(`proof.leaves[${i}][0]`), 32),
          bytes(pair[1], r.at(`proof.leaves[${i}][1]`), 32),
        ];
      }),
      siblings: arr(p.siblings, r.at("proof.siblings"), 64).map((s, i) =>
        bytes(s, r.at(`proof.siblings[${i}]`), 32),
      ),
    },
  };
}

function parseQuery(v: unknown, r: Reader): ExportQuery {
  const o = obj(v, r);
  const kind = str(o.kind, r.at("kind"));
  if (kind === "trace") {
    let target: TraceTarget;
    try {
      target = checkTarget(o.target);
    } catch (err) {
      r.fail(`target: ${(err as Error).message}`);
    }
    return { kind, target, from: nullableTime(o.from, r.at("from")), to: nullableTime(o.to, r.at("to")) };
  }
  if (kind === "report")
    return {
      kind,
      programmes: arr(o.programmes, r.at("programmes"), 100_000).map((p, i) =>
        str(p, r.at("programmes").at(i), ADDRESS_RE),
      ),
      from: nullableTime(o.from, r.at("from")),
      to: nullableTime(o.to, r.at("to")),
      threshold: BigInt(str(o.threshold, r.at("threshold"), /^(0|[1-9]\d{0,18})$/)),
    };
  if (kind === "reconciliation")
    return {
      kind,
      accounts: arr(o.accounts, r.at("accounts")).map((a, i) => {
        const x = obj(a, r.at("accounts").at(i));
        if (typeof x.contract !== "boolean") r.fail("must be a boolean", `${r.path}.accounts[${i}].contract`);
        return {
          account: str(x.account, r.at("accounts").at(i).at("account"), ADDRESS_RE),
          contract: x.contract as boolean,
        };
      }),
    };
  return r.at("kind").fail("must be trace, report or reconciliation");
}

/** Reads an export's JSON, checking its shape (AUDIT_EXPORT_INVALID names the field). */
export function parseExport(json: unknown): AuditExport {
  const R = new Reader("");
  const o = obj(json, R);
  if (o.format !== EXPORT_FORMAT)
    R.at("format").fail(`must be "${EXPORT_FORMAT}": this is not an audit export`);
  if (o.version !== EXPORT_VERSION)
    R.at("version").fail(`is ${String(o.version)}; this verifier reads version ${EXPORT_VERSION}`);
  const state = arr(o.state, R.at("state")).map((s, i): StateItem => {
    const r = R.at("state").at(i);
    const x = obj(s, r);
    const p = proven(x, r);
    const what = str(x.what, r.at("what"));
    if (what === "balance") return { what, account: str(x.account, r.at("account"), ADDRESS_RE), ...p };
    if (what === "supply" || what === "validator-set") return { what, ...p };
    return r.at("what").fail("must be validator-set, supply or balance");
  });
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    chainId: str(o.chainId, R.at("chainId"), /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
    genesisHash: bytes(o.genesisHash, R.at("genesisHash"), 32),
    height: int(o.height, R.at("height"), 1),
    createdAt: int(o.createdAt, R.at("createdAt")),
    query: parseQuery(o.query, R.at("query")),
    blocks: arr(o.blocks, R.at("blocks")).map((b, i) => {
      const r = R.at("blocks").at(i);
      const x = obj(b, r);
      return {
        height: int(x.height, r.at("height")),
        header: bytes(x.header, r.at("header"), undefined, 1024),
        certificate: bytes(x.certificate, r.at("certificate"), undefined, 64 * 1024),
      };
    }),
    entries: arr(o.entries, R.at("entries")).map((e, i) => {
      const r = R.at("entries").at(i);
      const x = obj(e, r);
      return {
        id: int(x.id, r.at("id")),
        height: int(x.height, r.at("height")),
        index: int(x.index, r.at("index")),
        tx: bytes(x.tx, r.at("tx"), undefined, 1 << 20),
        receipt: bytes(x.receipt, r.at("receipt"), undefined, 1 << 20),
        treeSize: int(x.treeSize, r.at("treeSize"), 1),
        txProof: arr(x.txProof, r.at("txProof"), 64).map((p, k) => bytes(p, r.at("txProof").at(k), 32)),
        receiptProof: arr(x.receiptProof, r.at("receiptProof"), 64).map((p, k) =>
          bytes(p, r.at("receiptProof").at(k), 32),
        ),
      };
    }),
    validatorChanges: arr(o.validatorChanges, R.at("validatorChanges")).map((v, i) =>
      ref(v, R.at("validatorChanges").at(i)),
    ),
    chains: arr(o.chains, R.at("chains")).map((c, i) => {
      const r = R.at("chains").at(i);
      const x = obj(c, r);
      const role = str(x.role, r.at("role"));
      if (role !== "target" && role !== "programme" && role !== "card")
        r.at("role").fail("must be target, programme or card");
      return {
        subject: str(x.subject, r.at("subject"), SUBJECT_RE),
        role: role as ExportChain["role"],
        from: nullableTime(x.from, r.at("from")),
        anchor: x.anchor === null || x.anchor === undefined ? null : ref(x.anchor, r.at("anchor")),
        links: arr(x.links, r.at("links")).map((l, k) => ref(l, r.at("links").at(k))),
        head: proven(x.head, r.at("head")),
      };
    }),
    context: arr(o.context, R.at("context")).map((c, i) => {
      const r = R.at("context").at(i);
      const x = obj(c, r);
      const role = str(x.role, r.at("role"));
      if (role !== "programme" && role !== "product") r.at("role").fail("must be programme or product");
      return { role: role as ContextItem["role"], ref: ref(x.ref, r.at("ref")) };
    }),
    state,
    result: o.result,
  };
}
