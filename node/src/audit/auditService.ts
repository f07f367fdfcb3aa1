import {
  type AuditEvent,
  type AuditExport,
  auditError,
  balanceCheck,
  buildReport,
  buildTrace,
  type ContextItem,
  cardsInRange,
  clearing,
  comparePosition,
  dailyEcny,
  type EventRef,
  EXPORT_FORMAT,
  EXPORT_VERSION,
  type ExportChain,
  type ExportEntry,
  type ExportQuery,
  issuances,
  matchRecharges,
  type ProgrammeInput,
  type ProvenValue,
  parseRechargeRecords,
  positionKey,
  productOf,
  programmeInfo,
  type RechargeRecord,
  reissuedFrom,
  reportJson,
  type StateItem,
  type TimeRange,
  type TraceTarget,
  toJson,
  traceJson,
  traceSubject,
} from "@custos/audit";
import { decode, merkleProofs } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import {
  auditHeadKey,
  ECNY_SUPPLY_KEY,
  ecnyBalanceKey,
  encodeGenesis,
  type Genesis,
  type StateProof,
  VALIDATOR_SET_KEY,
} from "@custos/types";
import { CustosError } from "@custos/utils";
import type { Ledger } from "../ledger/ledger.js";
import type { AuditIndex, AuditIndexErrorCode } from "./auditIndex.js";

/**
 * The audit queries a node answers (and `custos audit` asks): traces, reports, reconciliation,
 * clearing, event and transaction listings from the audit index, and exports that carry their
 * own evidence. Every figure is made by @custos/audit's functions from the index's events; an
 * export carries the entries those events came from, so the offline verifier recomputes the same
 * figures with the same functions from certified bytes.
 */
export interface AuditServiceModules {
  index: AuditIndex;
  ledger: Pick<
    Ledger,
    "head" | "getSync" | "stateProof" | "getBlock" | "getReceipts" | "getCertificateBytes" | "base"
  >;
  genesis: Genesis;
}

/** One chain as gathered: its anchor, links, and the head the state holds at the height. */
interface GatheredChain {
  subject: string;
  role: ExportChain["role"];
  from: number | null;
  anchor: AuditEvent | undefined;
  links: AuditEvent[];
  head: { value: Uint8Array | null; proof?: StateProof };
}

/** A state item without its proof (read with or without one). */
type StateWhat = { what: "validator-set" } | { what: "supply" } | { what: "balance"; account: string };

interface Gathered {
  height: number;
  query: ExportQuery;
  chains: GatheredChain[];
  state: { item: StateWhat & { value: Uint8Array | null }; proof?: StateProof }[];
  context: { role: ContextItem["role"]; event: AuditEvent }[];
  validatorChanges: AuditEvent[];
  result: unknown;
}

const amountOf = (v: Uint8Array | null | undefined): bigint =>
  v === null || v === undefined ? 0n : (decode(v, "Amount", 16) as bigint);

/** How long a query waits for the index to reach the ledger's head (normally a block or two). */
const CATCH_UP_MS = 10_000;

export class AuditService {
  constructor(private readonly m: AuditServiceModules) {}

  status(): Record<string, unknown> {
    const { index, ledger } = this.m;
    return {
      indexedHeight: index.height,
      ledgerHeight: ledger.head.height,
      // the first block of this node's audit history (1: from genesis)
      firstHeight: index.first,
      building: index.building ?? null,
      programmes: index.programmes(index.height).length,
    };
  }

  private async caughtUp(): Promise<number> {
    const h = this.m.ledger.head.height;
    await this.m.index.waitFor(h, { timeoutMs: CATCH_UP_MS });
    return this.m.index.height;
  }

  /**
   * The first block at or after `from` (0: from genesis). AUDIT_HISTORY_UNAVAILABLE when that
   * reaches below the first block this node's index holds (a ledger started from a snapshot, or
   * pruned, before the index was built).
   */
  private async fromHeight(from: number | null, indexed: number, what = "the query"): Promise<number> {
    const first = this.m.index.first;
    if (from === null) {
      if (first > 1) throw this.historyUnavailable(`${what} starts at genesis`);
      return 0;
    }
    if (first > 1) {
      // the range holds nothing below `first` when it starts after the block before it
      const before = await this.m.ledger.getBlock(first - 1);
      const floor =
        before?.header.timestamp ?? (await this.m.index.blockTime(first)) ?? Number.POSITIVE_INFINITY;
      if (from <= floor) throw this.historyUnavailable(`${what} starts before block ${first}`);
    }
    return (await this.m.index.heightAtOrAfter(from)) ?? indexed + 1;
  }

  /** What needs the chain's whole history (every balance, every card, the validator-set changes). */
  private fullHistory(what: string): void {
    if (this.m.index.first > 1) throw this.historyUnavailable(`${what} needs the history from genesis`);
  }

  private historyUnavailable(why: string): CustosError<AuditIndexErrorCode> {
    const first = this.m.index.first;
    return new CustosError<AuditIndexErrorCode>(
      "AUDIT_HISTORY_UNAVAILABLE",
      `this node's audit history starts at block ${first} (its ledger started from a snapshot or had pruned older blocks), and ${why}: ask an observer that keeps every block from genesis, or query from a later time`,
      { firstHeight: first },
    );
  }

  /**
   * Gathers what a query's figures (and its export) need, consistently at one height: the
   * chains' subjects are settled from the index, then the height and the state (chain heads,
   * balances, their proofs) are read at once from the ledger's head, then every chain's events up
   * to that height are read from the index (which never changes below its height).
   */
  private async gather(q: ExportQuery, proofs: boolean, attempt = 0): Promise<Gathered> {
    const { index, ledger } = this.m;
    if (proofs) this.fullHistory("an export (with every validator-set change)");
    if (q.kind === "reconciliation") this.fullHistory("the reconciliation (every balance)");
    if (q.kind === "report") this.fullHistory("a report (its programmes' cards and products)");
    if (q.kind === "trace" && "card" in q.target) this.fullHistory("a card's trace");
    const indexed = await this.caughtUp();
    const specs: { subject: string; role: ExportChain["role"]; from: number | null }[] = [];
    const addCardChains = async (programme: string, cards: number[]) => {
      const todo = [...cards];
      const done = new Set<number>();
      while (todo.length) {
        const id = todo.pop() as number;
        if (done.has(id)) continue;
        done.add(id);
        const subject = `card:${id}`;
        if (!specs.some((s) => s.subject === subject && s.from === null))
          specs.push({ subject, role: "card", from: null });
        const pred = reissuedFrom(programme, id, await index.subjectEvents(subject, 0, indexed));
        if (pred !== null) todo.push(pred);
      }
    };
    let query = q;
    if (q.kind === "trace") {
      const isCard = "card" in q.target;
      specs.push({ subject: traceSubject(q.target), role: "target", from: isCard ? null : q.from });
      if (isCard) {
        const { programme, card } = q.target as { programme: string; card: number };
        const pred = reissuedFrom(programme, card, await index.subjectEvents(`card:${card}`, 0, indexed));
        if (pred !== null) await addCardChains(programme, [pred]);
      }
    } else if (q.kind === "report") {
      // the range ends no later than the index: cards touched after it would need chains not gathered
      const last = (await index.blockTime(indexed)) ?? 0;
      const to = q.to === null || q.to > last ? last : q.to;
      query = { ...q, to };
      const range = { from: q.from, to };
      const fromHeight = await this.fromHeight(q.from, indexed);
      for (const p of q.programmes) {
        if (!index.instance(p)?.merchant)
          throw auditError("AUDIT_INVALID_QUERY", `${p} is not a prepaid-card programme known to this node`);
        specs.push({ subject: p, role: "programme", from: q.from });
        await addCardChains(p, cardsInRange(p, await index.subjectEvents(p, fromHeight, indexed), range));
      }
    }
    // every account the e-CNY events reached, for the balance check: complete at `indexed`, so
    // the state is read only if no block came in between (else again)
    let accounts: { account: string; contract: boolean }[] = [];
    if (q.kind === "reconciliation") {
      accounts = (await index.balances()).map((b) => ({
        account: b.account,
        contract: index.instance(b.account) !== undefined,
      }));
      query = { kind: "reconciliation", accounts };
      if (ledger.head.height !== indexed) {
        if (attempt >= 20)
          throw new CustosError<AuditIndexErrorCode>(
            "AUDIT_INDEX_BUILDING",
            "blocks keep coming while the accounts are read; try again",
            { retryable: true },
          );
        return this.gather(q, proofs, attempt + 1);
      }
    }
    // ---- one height for everything: the ledger's head, read without yielding
    const height = ledger.head.height;
    const read = (k: Uint8Array) => ({
      value: ledger.getSync(k) ?? null,
      ...(proofs ? { proof: ledger.stateProof(k) } : {}),
    });
    const heads = specs.map((s) => read(auditHeadKey(s.subject)));
    const state: Gathered["state"] = [];
    const put = (item: StateWhat, k: Uint8Array) => {
      const r = read(k);
      state.push({ item: { ...item, value: r.value }, ...(r.proof ? { proof: r.proof } : {}) });
    };
    if (proofs) put({ what: "validator-set" }, VALIDATOR_SET_KEY);
    if (q.kind === "trace" && !("card" in q.target)) {
      const a = "account" in q.target ? q.target.account : q.target.programme;
      put({ what: "balance", account: a }, ecnyBalanceKey(a));
    }
    if (q.kind === "reconciliation") {
      put({ what: "supply" }, ECNY_SUPPLY_KEY);
      for (const a of accounts) put({ what: "balance", account: a.account }, ecnyBalanceKey(a.account));
    }
    await index.waitFor(height, { timeoutMs: CATCH_UP_MS });
    // ---- the chains' events up to that height
    const chains: GatheredChain[] = [];
    for (const [i, s] of specs.entries()) {
      const fromHeight = await this.fromHeight(s.from, height, "the trace");
      chains.push({
        ...s,
        anchor: s.from === null ? undefined : await index.lastBefore(s.subject, fromHeight),
        links: await index.subjectEvents(s.subject, fromHeight, height),
        head: heads[i] as GatheredChain["head"],
      });
    }
    const context: Gathered["context"] = [];
    const validatorChanges = proofs ? await index.validatorChanges(height) : [];
    let result: unknown;
    if (query.kind === "trace") {
      const target = query.target;
      const main = chains[0] as GatheredChain;
      const balance = state.find((s) => s.item.what === "balance");
      result = traceJson(
        buildTrace({
          target,
          height,
          range: { from: query.from, to: query.to },
          events: main.links,
          ...("card" in target
            ? { predecessors: chains.slice(1).flatMap((c) => c.links) }
            : { balanceAtHeight: amountOf(balance?.item.value) }),
        }),
      );
    } else if (query.kind === "report") {
      const inputs: ProgrammeInput[] = [];
      for (const p of query.programmes) {
        const chain = chains.find((c) => c.subject === p && c.role === "programme") as GatheredChain;
        const [first] = await index.subjectEvents(p, 0, height, 1);
        const opening = first ? await index.txEvents(first.height, first.tx) : [];
        const info = programmeInfo(opening, p);
        if (!info)
          throw auditError(
            "AUDIT_INVALID_QUERY",
            `${p} has no ProgrammeOpened event: not a prepaid-card programme`,
          );
        for (const e of opening)
          if (e.emitter === "templates" && e.name === "InstanceCreated")
            context.push({ role: "programme", event: e });
        const products = new Map<number, string>();
        for (const e of await index.productEvents(p, height)) {
          const pr = productOf(e);
          if (!pr) continue;
          products.set(pr.product, pr.kind);
          context.push({ role: "product", event: e });
        }
        const cardEvents = chains
          .filter((c) => c.role === "card")
          .flatMap((c) => c.links)
          .filter((e) => e.emitter === p);
        inputs.push({ info, products, events: chain.links, cardEvents });
      }
      result = reportJson(
        buildReport({
          range: { from: query.from, to: query.to },
          height,
          threshold: query.threshold,
          programmes: inputs,
        }),
      );
    } else {
      const balances = accounts.map((a) => ({
        ...a,
        balance: amountOf(
          state.find((s) => s.item.what === "balance" && "account" in s.item && s.item.account === a.account)
            ?.item.value,
        ),
      }));
      const supply = amountOf(state.find((s) => s.item.what === "supply")?.item.value);
      result = toJson({ check: balanceCheck(height, supply, balances), balances });
    }
    return { height, query, chains, state, context, validatorChanges, result };
  }

  /** Every movement of an account's, a card's or a programme's funds, with running balances. */
  async trace(target: TraceTarget, range: TimeRange): Promise<Record<string, unknown>> {
    const g = await this.gather({ kind: "trace", target, ...range }, false);
    return g.result as Record<string, unknown>;
  }

  /** The supervision report of a range (all programmes, or those given). */
  async report(
    range: TimeRange,
    threshold: bigint | null,
    programmes?: string[],
  ): Promise<Record<string, unknown>> {
    const indexed = await this.caughtUp();
    const list = programmes ?? this.m.index.programmes(indexed).map((p) => p.address);
    const g = await this.gather(
      {
        kind: "report",
        programmes: list,
        ...range,
        threshold: threshold ?? this.m.genesis.ecny.largeTxThreshold,
      },
      false,
    );
    return g.result as Record<string, unknown>;
  }

  /**
   * The e-CNY operator's reconciliation: each day's issuance and payments in the range, the
   * recharges matched one to one with the operator's records (when given), and at the head every
   * account's balance against the total issued, with each account's balance by the events
   * against the state's (any difference is flagged).
   */
  async reconcile(range: TimeRange, records?: RechargeRecord[]): Promise<Record<string, unknown>> {
    const { index } = this.m;
    const g = await this.gather({ kind: "reconciliation", accounts: [] }, false);
    const fromHeight = await this.fromHeight(range.from, g.height);
    const toHeight =
      range.to === null ? g.height : Math.min(g.height, await index.heightAtOrBefore(range.to));
    const issued = await index.namedEvents("ecny", "Issued", fromHeight, toHeight);
    const transfers = await index.namedEvents("ecny", "Transfer", fromHeight, toHeight);
    const byEvents = new Map((await index.balances()).map((b) => [b.account, b.balance]));
    const balances = (g.result as { balances: { account: string; balance: string }[] }).balances;
    const differences = balances
      .filter((b) => BigInt(b.balance) !== (byEvents.get(b.account) ?? 0n))
      .map((b) => ({
        account: b.account,
        state: b.balance,
        events: (byEvents.get(b.account) ?? 0n).toString(),
      }));
    const issuedTotal = await index.issued();
    const check = (g.result as { check: Record<string, unknown> }).check;
    return toJson({
      from: range.from,
      to: range.to,
      height: g.height,
      days: dailyEcny([...issued, ...transfers]),
      recharges: issuances(issued),
      ...(records ? { matching: matchRecharges(records, issuances(issued)) } : {}),
      check,
      issuedByEvents: issuedTotal,
      differences,
      ok: check.ok === true && differences.length === 0 && BigInt(String(check.supply)) === issuedTotal,
    }) as Record<string, unknown>;
  }

  /** Flows between institutions' customers netted per institution per day (CST). */
  async clearing(range: TimeRange): Promise<Record<string, unknown>> {
    const { index } = this.m;
    this.fullHistory("clearing (every member's institution)");
    const height = await this.caughtUp();
    const fromHeight = await this.fromHeight(range.from, height);
    const toHeight = range.to === null ? height : Math.min(height, await index.heightAtOrBefore(range.to));
    const transfers = await index.namedEvents("ecny", "Transfer", fromHeight, toHeight);
    // an institution is its own; a contract belongs to the institution that instantiated it
    const memo = new Map<string, string | null>();
    for (const e of transfers)
      for (const a of [e.movement.from, e.movement.to]) {
        if (!a) continue;
        const k = `${a}@${e.height}`;
        if (memo.has(k)) continue;
        const inst = index.instance(a);
        memo.set(
          k,
          inst
            ? ((await index.institutionAt(inst.creator, e.height)) ?? inst.creator)
            : await index.institutionAt(a, e.height),
        );
      }
    const institutionOf = (a: string, h: number) => memo.get(`${a}@${h}`) ?? null;
    return toJson({
      from: range.from,
      to: range.to,
      height,
      days: clearing(transfers, institutionOf),
    }) as Record<string, unknown>;
  }

  /** e-CNY movements at or above `threshold` (default the genesis's large-transaction threshold). */
  async largeTransactions(range: TimeRange, threshold: bigint | null): Promise<Record<string, unknown>> {
    const { index } = this.m;
    const height = await this.caughtUp();
    const t = threshold ?? this.m.genesis.ecny.largeTxThreshold;
    const fromHeight = await this.fromHeight(range.from, height);
    const toHeight = range.to === null ? height : Math.min(height, await index.heightAtOrBefore(range.to));
    const list = [
      ...(await index.namedEvents("ecny", "Issued", fromHeight, toHeight)),
      ...(await index.namedEvents("ecny", "Transfer", fromHeight, toHeight)),
    ]
      .filter((e) => e.movement.amount >= t)
      .sort(comparePosition)
      .map(eventJson);
    return { from: range.from, to: range.to, height, threshold: t.toString(), transactions: list };
  }

  /**
   * Events from the index: of one audit chain (an account, a contract or programme, `card:<id>`,
   * `proposal:<id>`, ...), of one name, or all, in a time range; at most `limit`, from after
   * `cursor` (the `next` of the previous page).
   */
  async events(f: {
    subject?: string;
    name?: { kind: string; name: string };
    range: TimeRange;
    limit: number;
    cursor?: { height: number; tx: number; index: number };
    /** Only events of this contract (a card's subject, card:N, is shared by every programme). */
    emitter?: string;
  }): Promise<Record<string, unknown>> {
    const { index } = this.m;
    const height = await this.caughtUp();
    const fromHeight = await this.fromHeight(f.range.from, height);
    const toHeight =
      f.range.to === null ? height : Math.min(height, await index.heightAtOrBefore(f.range.to));
    const over = f.limit + 1;
    const read = (cursor: typeof f.cursor) =>
      f.subject
        ? index.subjectEvents(f.subject, fromHeight, toHeight, over, cursor)
        : f.name
          ? index.namedEvents(f.name.kind, f.name.name, fromHeight, toHeight, over, cursor)
          : index.allEvents(fromHeight, toHeight, over, cursor);
    // filtered before the page is cut, reading on until the page is full or the range ends
    const list: AuditEvent[] = [];
    for (let cursor = f.cursor; ; ) {
      const got = await read(cursor);
      list.push(...(f.emitter ? got.filter((e) => e.emitter === f.emitter) : got));
      const end = got[got.length - 1];
      if (got.length < over || list.length > f.limit || !end) break;
      cursor = { height: end.height, tx: end.tx, index: end.index };
    }
    const page = list.slice(0, f.limit);
    const last = page[page.length - 1];
    return {
      height,
      events: page.map(eventJson),
      next: list.length > f.limit && last ? positionKey(last) : null,
    };
  }

  /** Transactions sent by or to an address (failed ones too), in a time range. */
  async txs(address: string, range: TimeRange, limit: number): Promise<Record<string, unknown>> {
    const { index } = this.m;
    const height = await this.caughtUp();
    const fromHeight = await this.fromHeight(range.from, height);
    const toHeight = range.to === null ? height : Math.min(height, await index.heightAtOrBefore(range.to));
    const list = await index.accountTxs(address, fromHeight, toHeight, limit);
    return { height, txs: list.map((t) => toJson(t)) };
  }

  /** Programmes the index knows, with their merchant and institution. */
  async programmes(): Promise<Record<string, unknown>> {
    const height = await this.caughtUp();
    return { height, programmes: this.m.index.programmes(height) };
  }

  // ---------- exports ----------

  /** An export of a trace, a report or the balance check, with everything needed to check it offline. */
  async export(q: ExportQuery): Promise<AuditExport> {
    let query = q;
    if (q.kind === "report" && q.programmes.length === 0) {
      const indexed = await this.caughtUp();
      query = { ...q, programmes: this.m.index.programmes(indexed).map((p) => p.address) };
    }
    const g = await this.gather(query, true);
    const { ledger } = this.m;
    // every event the export refers to, by transaction
    const events: AuditEvent[] = [
      ...g.chains.flatMap((c) => (c.anchor ? [c.anchor, ...c.links] : c.links)),
      ...g.context.map((c) => c.event),
      ...g.validatorChanges,
    ];
    const txs = new Map<string, { height: number; tx: number }>();
    for (const e of events) txs.set(`${e.height}:${e.tx}`, { height: e.height, tx: e.tx });
    const order = [...txs.values()].sort((a, b) => a.height - b.height || a.tx - b.tx);
    const ids = new Map(order.map((t, i) => [`${t.height}:${t.tx}`, i]));
    const ref = (e: AuditEvent): EventRef => ({
      entry: ids.get(`${e.height}:${e.tx}`) as number,
      event: e.index,
    });
    const heights = [...new Set([...order.map((t) => t.height), g.height])].sort((a, b) => a - b);
    const entries: ExportEntry[] = [];
    const blocks: AuditExport["blocks"] = [];
    for (const h of heights) {
      const block = await ledger.getBlock(h);
      const receipts = await ledger.getReceipts(h);
      const certificate = await ledger.getCertificateBytes(h);
      if (!block || !receipts || !certificate)
        throw h <= ledger.base
          ? new CustosError<AuditIndexErrorCode>(
              "AUDIT_HISTORY_UNAVAILABLE",
              `block ${h}, which the export needs, was pruned from this node's ledger (it holds blocks from ${ledger.base + 1}): ask an observer that keeps every block from genesis`,
              { firstHeight: ledger.base + 1 },
            )
          : new CustosError<AuditIndexErrorCode>("AUDIT_INDEX_BUILDING", `block ${h} is not in the ledger`);
      blocks.push({ height: h, header: block.headerBytes, certificate });
      const here = order.filter((t) => t.height === h);
      if (here.length === 0) continue;
      const idx = here.map((t) => t.tx);
      const txProofs = merkleProofs(
        block.txs.map((t) => t.hash),
        idx,
      );
      const receiptProofs = merkleProofs(receipts, idx);
      here.forEach((t, k) => {
        entries.push({
          id: ids.get(`${t.height}:${t.tx}`) as number,
          height: h,
          index: t.tx,
          tx: block.txs[t.tx]?.bytes as Uint8Array,
          receipt: receipts[t.tx] as Uint8Array,
          treeSize: block.txs.length,
          txProof: txProofs[k]?.path as Uint8Array[],
          receiptProof: receiptProofs[k]?.path as Uint8Array[],
        });
      });
    }
    const proven = (value: Uint8Array | null, proof: StateProof | undefined): ProvenValue => ({
      value,
      proof: proof as StateProof,
    });
    return {
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      chainId: this.m.genesis.chainId,
      genesisHash: sm3(encodeGenesis(this.m.genesis)),
      height: g.height,
      createdAt: Date.now(),
      query: g.query,
      blocks,
      entries,
      validatorChanges: g.validatorChanges.map(ref),
      chains: g.chains.map((c) => ({
        subject: c.subject,
        role: c.role,
        from: c.from,
        anchor: c.anchor ? ref(c.anchor) : null,
        links: c.links.map(ref),
        head: proven(c.head.value, c.head.proof),
      })),
      context: g.context.map((c) => ({ role: c.role, ref: ref(c.event) })),
      state: g.state.map((s) => ({ ...s.item, ...proven(s.item.value, s.proof) }) as StateItem),
      result: g.result,
    };
  }
}

/** An audit event as JSON (fen as decimal strings). */
export function eventJson(e: AuditEvent): Record<string, unknown> {
  return toJson({
    height: e.height,
    tx: e.tx,
    index: e.index,
    time: e.time,
    txHash: e.txHash,
    sender: e.sender,
    emitter: e.emitter,
    name: e.name,
    data: e.data,
    topics: e.topics,
    movement: e.movement,
  }) as Record<string, unknown>;
}

/** Reads recharge records given in a request (a JSON array of {rechargeId, account, amount}). */
export function rechargeRecords(v: unknown): RechargeRecord[] {
  if (!Array.isArray(v) || v.length > 100_000)
    throw auditError(
      "AUDIT_INVALID_QUERY",
      "recharges must be an array (at most 100,000) of {rechargeId, account, amount}",
    );
  return parseRechargeRecords(JSON.stringify(v));
}
