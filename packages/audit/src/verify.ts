import { decode, verifyMerkleProof } from "@custos/codec";
import { addressFromPublicKey, sm2Verify, sm3 } from "@custos/crypto";
import {
  auditHeadKey,
  type CommitCertificate,
  commitVoteBytes,
  decodeCertificate,
  decodeHeader,
  decodeReceipt,
  decodeSignedTx,
  decodeValidatorSet,
  ECNY_SUPPLY_KEY,
  ecnyBalanceKey,
  encodeGenesis,
  eventDigest,
  eventSubjects,
  type Genesis,
  type Header,
  nextHead,
  type Receipt,
  type SignedTx,
  VALIDATOR_SET_KEY,
  validatorSetHash,
  verifyCommitCertificate,
  verifyStateProof,
  ZERO_HEAD,
} from "@custos/types";
import { bytesEqual, errorMessage, toHex } from "@custos/utils";
import { cardsInRange, reissuedFrom } from "./assemble.js";
import { type AuditEvent, auditEvents, comparePosition } from "./events.js";
import type { AuditExport, EventRef, ProvenValue } from "./exportFormat.js";
import { balanceCheck } from "./reconcile.js";
import { buildReport, type ProgrammeInput, productOf, programmeInfo, reportJson } from "./report.js";
import { buildTrace, traceJson, traceSubject } from "./trace.js";
import { toJson } from "./values.js";

/**
 * The offline verifier of audit exports: every signature, proof and certificate; the validator
 * set in force for each certificate, from genesis through every certified change; each chain
 * complete from its anchor to the head the state proves at the export's height; and every figure
 * of the result recomputed from the entries with the functions that made it. No node is asked
 * anything: the genesis file is the only thing trusted.
 */

/** Which check failed, where: `entry` and `block` name the export's entry and block. */
export interface VerifyFailure {
  check:
    | "genesis"
    | "block.header"
    | "block.certificate"
    | "block.validatorSet"
    | "entry.block"
    | "entry.tx"
    | "entry.signature"
    | "entry.txProof"
    | "entry.receipt"
    | "entry.receiptProof"
    | "validators.change"
    | "validators.final"
    | "state.proof"
    | "chain.anchor"
    | "chain.link"
    | "chain.head"
    | "chain.missing"
    | "context"
    | "result";
  message: string;
  entry?: number;
  block?: number;
  subject?: string;
}

export interface VerifyReport {
  ok: boolean;
  chainId: string;
  height: number;
  query: AuditExport["query"];
  checked: {
    blocks: number;
    certificates: number;
    commitSignatures: number;
    entries: number;
    txSignatures: number;
    txProofs: number;
    receiptProofs: number;
    validatorChanges: number;
    chains: number;
    links: number;
    stateProofs: number;
    figures: number;
  };
  failures: VerifyFailure[];
  /** The figures recomputed from the entries (what was compared with the export's). */
  result: unknown;
}

/** Verifies many signatures at once (the crypto package's VerifierPool fits). */
export interface BatchVerifier {
  verifyBatch(
    items: readonly { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array }[],
  ): Promise<boolean[]>;
}

const syncVerifier: BatchVerifier = {
  async verifyBatch(items) {
    return items.map((i) => sm2Verify(i.publicKey, i.message, i.signature));
  },
};

const short = (b: Uint8Array) => `0x${toHex(b).slice(0, 16)}…`;

interface BlockInfo {
  height: number;
  header: Header;
  hash: Uint8Array;
  cert: CommitCertificate;
  ok: boolean;
}

interface EntryInfo {
  id: number;
  height: number;
  stx: SignedTx;
  receipt: Receipt;
  events: AuditEvent[];
  ok: boolean;
}

interface ValidatorSetSpan {
  /** The first height this set signs. */
  from: number;
  members: { name: string; publicKey: Uint8Array }[];
}

/** The first difference between two JSON values: its path and both values, or undefined. */
function firstDifference(
  a: unknown,
  b: unknown,
  path = "result",
): { path: string; a: unknown; b: unknown } | undefined {
  if (Object.is(a, b)) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return { path: `${path}.length`, a: a.length, b: b.length };
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${path}.${k}`,
      );
      if (d) return d;
    }
    return undefined;
  }
  return { path, a, b };
}

function countLeaves(v: unknown): number {
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + countLeaves(x), 0);
  if (v && typeof v === "object") return Object.values(v).reduce((n: number, x) => n + countLeaves(x), 0);
  return 1;
}

export async function verifyExport(
  x: AuditExport,
  o: { genesis: Genesis; verifier?: BatchVerifier },
): Promise<VerifyReport> {
  const failures: VerifyFailure[] = [];
  const fail = (f: VerifyFailure) => {
    if (failures.length < 1000) failures.push(f);
  };
  const checked: VerifyReport["checked"] = {
    blocks: 0,
    certificates: 0,
    commitSignatures: 0,
    entries: 0,
    txSignatures: 0,
    txProofs: 0,
    receiptProofs: 0,
    validatorChanges: 0,
    chains: 0,
    links: 0,
    stateProofs: 0,
    figures: 0,
  };
  const report = (result: unknown): VerifyReport => ({
    ok: failures.length === 0,
    chainId: x.chainId,
    height: x.height,
    query: x.query,
    checked,
    failures,
    result,
  });
  const { genesis } = o;

  // ---- the chain: the genesis given is the one the export claims
  const genesisHash = sm3(encodeGenesis(genesis));
  if (x.chainId !== genesis.chainId || !bytesEqual(genesisHash, x.genesisHash)) {
    fail({
      check: "genesis",
      message: `the export is of chain ${x.chainId} with genesis ${short(x.genesisHash)}; the genesis given is chain ${genesis.chainId} with genesis ${short(genesisHash)}`,
    });
    return report(null);
  }

  // ---- blocks: header bytes, certificate bytes
  const blocks = new Map<number, BlockInfo>();
  for (const b of x.blocks) {
    const where = { block: b.height };
    if (blocks.has(b.height)) {
      fail({ check: "block.header", ...where, message: `block ${b.height} is in the export twice` });
      continue;
    }
    try {
      const header = decodeHeader(b.header);
      if (header.height !== b.height) throw new Error(`the header is of height ${header.height}`);
      if (header.chainId !== x.chainId) throw new Error(`the header is of chain ${header.chainId}`);
      const hash = sm3(b.header);
      let cert: CommitCertificate;
      try {
        cert = decodeCertificate(b.certificate);
      } catch (err) {
        fail({
          check: "block.certificate",
          ...where,
          message: `block ${b.height}: certificate: ${errorMessage(err)}`,
        });
        blocks.set(b.height, { height: b.height, header, hash, cert: undefined as never, ok: false });
        continue;
      }
      blocks.set(b.height, { height: b.height, header, hash, cert, ok: true });
      checked.blocks++;
    } catch (err) {
      fail({ check: "block.header", ...where, message: `block ${b.height}: header: ${errorMessage(err)}` });
    }
  }
  const headBlock = blocks.get(x.height);
  if (!headBlock)
    fail({
      check: "state.proof",
      block: x.height,
      message: `the export has no header for its height ${x.height}`,
    });

  // ---- entries: tx, receipt, both inclusion proofs
  const entries = new Map<number, EntryInfo>();
  const sigItems: { publicKey: Uint8Array; message: Uint8Array; signature: Uint8Array; entry: number }[] = [];
  const senders = new Map<string, string>();
  for (const e of x.entries) {
    const label = `entry ${e.id} (block ${e.height}, tx ${e.index})`;
    const at = { entry: e.id, block: e.height };
    if (entries.has(e.id)) {
      fail({ check: "entry.tx", ...at, message: `${label}: the id is used twice` });
      continue;
    }
    const block = blocks.get(e.height);
    if (!block) {
      fail({
        check: "entry.block",
        ...at,
        message: `${label}: the export has no header of block ${e.height}`,
      });
      continue;
    }
    let stx: SignedTx;
    let receipt: Receipt;
    try {
      stx = decodeSignedTx(e.tx);
      if (stx.tx.chainId !== x.chainId) throw new Error(`it is a transaction of chain ${stx.tx.chainId}`);
    } catch (err) {
      fail({ check: "entry.tx", ...at, message: `${label}: transaction: ${errorMessage(err)}` });
      continue;
    }
    const txLabel = `entry ${e.id} (tx 0x${toHex(stx.hash).slice(0, 16)}… in block ${e.height})`;
    try {
      receipt = decodeReceipt(e.receipt);
      if (!bytesEqual(receipt.txHash, stx.hash)) throw new Error("it is the receipt of another transaction");
    } catch (err) {
      fail({ check: "entry.receipt", ...at, message: `${txLabel}: receipt: ${errorMessage(err)}` });
      continue;
    }
    let ok = block.ok;
    if (
      !verifyMerkleProof(
        stx.hash,
        { leafIndex: e.index, treeSize: e.treeSize, path: e.txProof },
        block.header.txRoot,
      )
    ) {
      fail({
        check: "entry.txProof",
        ...at,
        message: `${txLabel}: its inclusion proof does not lead to block ${e.height}'s txRoot`,
      });
      ok = false;
    } else checked.txProofs++;
    if (
      !verifyMerkleProof(
        e.receipt,
        { leafIndex: e.index, treeSize: e.treeSize, path: e.receiptProof },
        block.header.receiptRoot,
      )
    ) {
      fail({
        check: "entry.receiptProof",
        ...at,
        message: `${txLabel}: the receipt's inclusion proof does not lead to block ${e.height}'s receiptRoot (the receipt or the proof was altered)`,
      });
      ok = false;
    } else checked.receiptProofs++;
    sigItems.push({ publicKey: stx.tx.sender, message: stx.body, signature: stx.signature, entry: e.id });
    const pk = toHex(stx.tx.sender);
    let sender = senders.get(pk);
    if (sender === undefined) {
      sender = addressFromPublicKey(stx.tx.sender);
      senders.set(pk, sender);
    }
    const events = auditEvents(
      { height: e.height, tx: e.index, time: block.header.timestamp, txHash: `0x${toHex(stx.hash)}`, sender },
      receipt.events,
    );
    entries.set(e.id, { id: e.id, height: e.height, stx, receipt, events, ok });
    checked.entries++;
  }

  const eventAt = (r: EventRef) => {
    const en = entries.get(r.entry);
    const raw = en?.receipt.events[r.event];
    const ev = en?.events[r.event];
    return en && raw && ev ? { entry: en, raw, ev } : undefined;
  };
  const refLabel = (r: EventRef) => {
    const en = entries.get(r.entry);
    return `entry ${r.entry} event ${r.event}${en ? ` (tx 0x${toHex(en.stx.hash).slice(0, 16)}… in block ${en.height})` : ""}`;
  };

  // the transactions' signatures verify on the pool while the rest is checked here
  const verifier = o.verifier ?? syncVerifier;
  const txSigResults = verifier.verifyBatch(sigItems);

  // ---- the validator set from genesis through every certified change
  const spans: ValidatorSetSpan[] = [
    { from: 0, members: genesis.consensus.validators.map((v) => ({ name: v.name, publicKey: v.publicKey })) },
  ];
  let lastChange: AuditEvent | undefined;
  for (const r of x.validatorChanges) {
    const at = eventAt(r);
    if (!at) {
      fail({
        check: "validators.change",
        entry: r.entry,
        message: `validator change ${refLabel(r)}: no such event`,
      });
      continue;
    }
    const { ev } = at;
    if (lastChange && comparePosition(lastChange, ev) >= 0)
      fail({
        check: "validators.change",
        entry: r.entry,
        message: `validator change ${refLabel(r)} is out of chain order`,
      });
    lastChange = ev;
    const d = Array.isArray(ev.data) ? ev.data : [];
    const prev = (spans[spans.length - 1] as ValidatorSetSpan).members;
    let next: ValidatorSetSpan["members"] | undefined;
    if (
      ev.emitter === "validators" &&
      ev.name === "ValidatorAdded" &&
      typeof d[0] === "string" &&
      typeof d[1] === "string"
    ) {
      next = [...prev, { name: d[0], publicKey: Buffer.from((d[1] as string).slice(2), "hex") }];
    } else if (ev.emitter === "validators" && ev.name === "ValidatorRemoved" && typeof d[0] === "string") {
      if (!prev.some((m) => m.name === d[0]))
        fail({
          check: "validators.change",
          entry: r.entry,
          message: `${refLabel(r)} removes ${d[0]}, who is not in the set`,
        });
      next = prev.filter((m) => m.name !== d[0]);
    } else {
      fail({
        check: "validators.change",
        entry: r.entry,
        message: `${refLabel(r)} is not a validator-set change`,
      });
      continue;
    }
    const fromHeight = Number(d[d.length - 1]);
    if (fromHeight !== ev.height + 1)
      fail({
        check: "validators.change",
        entry: r.entry,
        message: `${refLabel(r)} says the change applies from height ${fromHeight}, not ${ev.height + 1}`,
      });
    spans.push({ from: ev.height + 1, members: next });
    checked.validatorChanges++;
  }
  const setAt = (h: number) => {
    let s = spans[0] as ValidatorSetSpan;
    for (const x2 of spans) if (x2.from <= h) s = x2;
    return s;
  };

  // ---- certificates, each against the set in force at its height
  const commitItems: {
    publicKey: Uint8Array;
    message: Uint8Array;
    signature: Uint8Array;
    block: number;
    validator: number;
  }[] = [];
  const entriesOf = (h: number) => [...entries.values()].filter((e) => e.height === h).map((e) => e.id);
  for (const b of blocks.values()) {
    if (!b.ok) continue;
    const set = setAt(b.height);
    const keys = set.members.map((m) => m.publicKey);
    const held = entriesOf(b.height);
    const holds = held.length ? ` (holds entries ${held.join(", ")})` : "";
    if (!bytesEqual(b.header.validatorSetHash, validatorSetHash(keys))) {
      fail({
        check: "block.validatorSet",
        block: b.height,
        message: `block ${b.height}${holds}: its header names validator set ${short(b.header.validatorSetHash)}, but the set in force (${set.members.map((m) => m.name).join(", ")}) is ${short(validatorSetHash(keys))}: a validator-set change is missing from the export, or the block is not of this chain`,
      });
      b.ok = false;
      continue;
    }
    try {
      verifyCommitCertificate(
        b.cert,
        { chainId: x.chainId, height: b.height, blockHash: b.hash },
        keys,
        () => true,
      );
    } catch (err) {
      fail({
        check: "block.certificate",
        block: b.height,
        message: `block ${b.height}${holds}: ${errorMessage(err)}`,
      });
      b.ok = false;
      continue;
    }
    const msg = commitVoteBytes(b.cert.chainId, b.cert.height, b.cert.view, b.cert.blockHash);
    for (const s of b.cert.signatures)
      commitItems.push({
        publicKey: keys[s.validator] as Uint8Array,
        message: msg,
        signature: s.signature,
        block: b.height,
        validator: s.validator,
      });
    checked.certificates++;
  }

  // ---- the certificates' signatures (the transactions' run on the pool meanwhile)
  const commitResults = await verifier.verifyBatch(commitItems);
  commitItems.forEach((c, i) => {
    if (commitResults[i]) {
      checked.commitSignatures++;
      return;
    }
    const b = blocks.get(c.block);
    if (b?.ok) {
      b.ok = false;
      const held = entriesOf(c.block);
      fail({
        check: "block.certificate",
        block: c.block,
        message: `block ${c.block}${held.length ? ` (holds entries ${held.join(", ")})` : ""}: commit certificate: bad signature from validator ${c.validator} (${setAt(c.block).members[c.validator]?.name ?? "?"})`,
      });
    }
  });
  for (const e of entries.values()) if (!blocks.get(e.height)?.ok) e.ok = false;

  // ---- state at the export's height
  const root = headBlock?.ok ? headBlock.header.stateRoot : undefined;
  const proven = (
    key: Uint8Array,
    p: ProvenValue,
    what: string,
    extra: Partial<VerifyFailure> = {},
  ): boolean => {
    if (!root) {
      fail({
        check: "state.proof",
        block: x.height,
        ...extra,
        message: `${what}: the header at height ${x.height} is not certified`,
      });
      return false;
    }
    try {
      verifyStateProof(root, key, p.value, p.proof);
      checked.stateProofs++;
      return true;
    } catch (err) {
      fail({
        check: "state.proof",
        block: x.height,
        ...extra,
        message: `${what} at height ${x.height}: ${errorMessage(err)}`,
      });
      return false;
    }
  };
  const vset = x.state.find((s) => s.what === "validator-set");
  const finalSet = (spans[spans.length - 1] as ValidatorSetSpan).members;
  if (!vset)
    fail({ check: "validators.final", message: "the export does not prove the validator set at its height" });
  else if (proven(VALIDATOR_SET_KEY, vset, "the validator set")) {
    const stored = vset.value === null ? null : decodeValidatorSet(vset.value);
    const same =
      stored === null
        ? spans.length === 1
        : stored.length === finalSet.length &&
          stored.every(
            (v, i) =>
              v.name === finalSet[i]?.name && bytesEqual(v.publicKey, finalSet[i]?.publicKey as Uint8Array),
          );
    if (!same)
      fail({
        check: "validators.final",
        message: `the validator set at height ${x.height} is ${stored === null ? "genesis's" : stored.map((v) => v.name).join(", ")}, but the export's changes lead to ${finalSet.map((m) => m.name).join(", ")}: a validator-set change is missing`,
      });
  }
  const amountOf = (p: ProvenValue): bigint =>
    p.value === null ? 0n : (decode(p.value, "Amount", 16) as bigint);
  const balances = new Map<string, bigint>();
  let supply: bigint | undefined;
  for (const s of x.state) {
    if (s.what === "balance") {
      if (proven(ecnyBalanceKey(s.account), s, `the e-CNY balance of ${s.account}`))
        balances.set(s.account, amountOf(s));
    } else if (s.what === "supply") {
      if (proven(ECNY_SUPPLY_KEY, s, "the e-CNY supply")) supply = amountOf(s);
    }
  }

  // ---- chains: anchor, every link, the head the state proves
  const chainEvents = new Map<string, AuditEvent[]>();
  for (const c of x.chains) {
    checked.chains++;
    const S = c.subject;
    const cf = (check: VerifyFailure["check"], message: string, entry?: number) =>
      fail({
        check,
        subject: S,
        ...(entry !== undefined ? { entry } : {}),
        message: `chain of ${S}: ${message}`,
      });
    const headOf = (r: EventRef): { head: Uint8Array; ev: AuditEvent } | string => {
      const at = eventAt(r);
      if (!at) return `${refLabel(r)} is not an event of the export`;
      if (!at.entry.ok) return `${refLabel(r)} did not verify (see above)`;
      const pos = eventSubjects(at.raw).indexOf(S);
      if (pos < 0) return `${refLabel(r)} is not about ${S}`;
      return { head: at.raw.heads[pos] as Uint8Array, ev: at.ev };
    };
    let prev: Uint8Array = ZERO_HEAD;
    let prevEv: AuditEvent | undefined;
    let lastRef: EventRef | undefined;
    let broken = false;
    if (c.anchor) {
      const a = headOf(c.anchor);
      if (typeof a === "string") {
        cf("chain.anchor", `anchor: ${a}`, c.anchor.entry);
        broken = true;
      } else if (c.from === null || a.ev.time >= c.from) {
        cf("chain.anchor", `the anchor ${refLabel(c.anchor)} is not before the range`, c.anchor.entry);
        broken = true;
      } else {
        prev = a.head;
        prevEv = a.ev;
      }
    }
    const evs: AuditEvent[] = [];
    for (const [k, r] of c.links.entries()) {
      const l = headOf(r);
      if (typeof l === "string") {
        cf("chain.link", `link ${k}: ${l}`, r.entry);
        broken = true;
        break;
      }
      if (prevEv && comparePosition(prevEv, l.ev) >= 0) {
        cf("chain.link", `link ${k} (${refLabel(r)}) is out of chain order`, r.entry);
        broken = true;
        break;
      }
      if (c.from !== null && l.ev.time < c.from) {
        cf("chain.link", `link ${k} (${refLabel(r)}) is before the range: it should be the anchor`, r.entry);
        broken = true;
        break;
      }
      const at = eventAt(r) as NonNullable<ReturnType<typeof eventAt>>;
      const expected = nextHead(prev, eventDigest(at.entry.stx.hash, r.event, at.raw));
      if (!bytesEqual(expected, l.head)) {
        cf(
          "chain.link",
          `link ${k} (${refLabel(r)}) does not follow ${lastRef ? refLabel(lastRef) : c.anchor ? "the anchor" : "the chain's start"}: an event of ${S} between them is missing from the export, or one of them was altered`,
          r.entry,
        );
        broken = true;
        break;
      }
      checked.links++;
      prev = l.head;
      prevEv = l.ev;
      lastRef = r;
      evs.push(l.ev);
    }
    if (proven(auditHeadKey(S), c.head, `the audit chain head of ${S}`, { subject: S }) && !broken) {
      const want = c.head.value;
      if (want === null ? !bytesEqual(prev, ZERO_HEAD) : !bytesEqual(prev, want))
        cf(
          "chain.head",
          `the export ends at ${lastRef ? refLabel(lastRef) : c.anchor ? "the anchor" : "the chain's start"} (head ${short(prev)}) but the state at height ${x.height} holds head ${want === null ? "none" : short(want)}: the chain's later events${lastRef ? ` after entry ${lastRef.entry}` : ""} are missing from the export`,
          lastRef?.entry,
        );
    }
    if (!broken) chainEvents.set(S, evs);
  }

  // ---- context events
  const context = { programmes: [] as AuditEvent[], products: [] as AuditEvent[] };
  for (const c of x.context) {
    const at = eventAt(c.ref);
    if (!at?.entry.ok) {
      fail({
        check: "context",
        entry: c.ref.entry,
        message: `context ${refLabel(c.ref)}: not a verified event of the export`,
      });
      continue;
    }
    if (c.role === "programme") context.programmes.push(...at.entry.events);
    else if (productOf(at.ev)) context.products.push(at.ev);
    else
      fail({
        check: "context",
        entry: c.ref.entry,
        message: `context ${refLabel(c.ref)} is not a ProductAdded event`,
      });
  }

  // ---- the transactions' signatures (started with the entries)
  const txResults = await txSigResults;
  sigItems.forEach((s, i) => {
    if (txResults[i]) {
      checked.txSignatures++;
      return;
    }
    const en = entries.get(s.entry);
    if (en) en.ok = false;
    fail({
      check: "entry.signature",
      entry: s.entry,
      message: `entry ${s.entry}: the transaction's SM2 signature does not verify against its sender's key`,
    });
  });

  // ---- the figures, recomputed from the entries
  const q = x.query;
  let result: unknown = null;
  const chainOf = (subject: string, from: number | null, why: string): AuditEvent[] | undefined => {
    const c = x.chains.find((k) => k.subject === subject && k.from === from);
    if (!c) {
      fail({
        check: "chain.missing",
        subject,
        message: `the export has no chain of ${subject}${from === null ? " from its start" : ` from ${from}`} (${why})`,
      });
      return undefined;
    }
    return chainEvents.get(subject);
  };
  const cardHistories = (programme: string, cards: number[]): AuditEvent[] | undefined => {
    const out: AuditEvent[] = [];
    const todo = [...cards];
    const done = new Set<number>();
    while (todo.length) {
      const id = todo.pop() as number;
      if (done.has(id)) continue;
      done.add(id);
      const evs = chainOf(`card:${id}`, null, `card ${id} of ${programme}`);
      if (!evs) return undefined;
      out.push(...evs);
      const pred = reissuedFrom(programme, id, evs);
      if (pred !== null) todo.push(pred);
    }
    return out;
  };
  try {
    if (q.kind === "trace") {
      const subject = traceSubject(q.target);
      const isCard = "card" in q.target;
      const events = chainOf(subject, isCard ? null : q.from, "the trace's subject");
      let predecessors: AuditEvent[] | undefined = [];
      if (events && isCard) {
        const { programme, card } = q.target as { programme: string; card: number };
        const pred = reissuedFrom(programme, card, events);
        predecessors = pred === null ? [] : cardHistories(programme, [pred]);
      }
      const account = "account" in q.target ? q.target.account : q.target.programme;
      const balance = balances.get(account);
      if (!isCard && balance === undefined)
        fail({ check: "state.proof", message: `the export does not prove the e-CNY balance of ${account}` });
      else if (events && predecessors) {
        const trace = buildTrace({
          target: q.target,
          height: x.height,
          range: { from: q.from, to: q.to },
          events,
          ...(isCard ? { predecessors } : { balanceAtHeight: balance as bigint }),
        });
        result = traceJson(trace);
      }
    } else if (q.kind === "report") {
      const inputs: ProgrammeInput[] = [];
      let complete = true;
      for (const p of q.programmes) {
        const events = chainOf(p, q.from, `programme ${p} of the report`);
        const info = programmeInfo(
          context.programmes.filter(
            (e) => e.emitter === p || (e.emitter === "templates" && Array.isArray(e.data) && e.data[0] === p),
          ),
          p,
        );
        if (!info) {
          fail({
            check: "context",
            subject: p,
            message: `the export does not carry the opening of programme ${p} (its InstanceCreated and ProgrammeOpened)`,
          });
          complete = false;
          continue;
        }
        if (!events) {
          complete = false;
          continue;
        }
        const range = { from: q.from, to: q.to };
        const cardEvents = cardHistories(p, cardsInRange(p, events, range));
        if (!cardEvents) {
          complete = false;
          continue;
        }
        const products = new Map<number, string>();
        for (const e of context.products.filter((e) => e.emitter === p)) {
          const pr = productOf(e);
          if (pr) products.set(pr.product, pr.kind);
        }
        for (const e of cardEvents)
          if (
            e.emitter === p &&
            e.name === "CardSold" &&
            e.movement.product !== undefined &&
            !products.has(e.movement.product)
          )
            fail({
              check: "context",
              subject: p,
              message: `the export does not carry ProductAdded of product ${e.movement.product} of ${p}`,
            });
        inputs.push({ info, products, events, cardEvents });
      }
      if (complete)
        result = reportJson(
          buildReport({
            range: { from: q.from, to: q.to },
            height: x.height,
            threshold: q.threshold,
            programmes: inputs,
          }),
        );
    } else {
      const list = q.accounts.map((a) => {
        const b = balances.get(a.account);
        if (b === undefined)
          fail({
            check: "state.proof",
            message: `the export does not prove the e-CNY balance of ${a.account}`,
          });
        return { account: a.account, balance: b ?? 0n, contract: a.contract };
      });
      if (supply === undefined)
        fail({ check: "state.proof", message: "the export does not prove the e-CNY supply" });
      else result = toJson({ check: balanceCheck(x.height, supply, list), balances: list });
    }
  } catch (err) {
    fail({ check: "result", message: `the figures could not be recomputed: ${errorMessage(err)}` });
  }
  if (result !== null) {
    const d = firstDifference(x.result, result);
    if (d)
      fail({
        check: "result",
        message: `${d.path}: the export says ${JSON.stringify(d.a)}, the entries give ${JSON.stringify(d.b)}`,
      });
    else checked.figures = countLeaves(result);
  } else if (failures.length === 0) fail({ check: "result", message: "the figures could not be recomputed" });
  return report(result);
}
