import {
  decode,
  encode,
  fieldAt,
  readArray,
  readBytes,
  readNullable,
  readString,
  readUint,
} from "@custos/codec";
import { type Address, parseAddress } from "@custos/crypto";
import { ADDRESS_RE, HASH_RE } from "@custos/types";
import { fromHex, toHex } from "@custos/utils";
import { type ContractContext, ContractError, parseArgs, type SystemContract } from "./contract.js";
import { requireRole } from "./members.js";
import { readInstance } from "./templates.js";

/**
 * Complaints (行业举报): a consumer reports a programme (a prepaid-card programme, or any contract
 * instance a merchant runs) under a category, with the SM3 hash of the details it keeps off the
 * chain (personal details never go on chain; the hash lets the regulator check the document it
 * is shown later). The regulator classifies it (validity and severity; it may reclassify until it
 * is handled), then records its handling, which closes it. Every step is an event about the
 * programme, the consumer and the complaint (`complaint:<id>`), so each extends those audit
 * chains: a programme's trace and its report count its complaints, and the audit report's risk
 * level (packages/audit/src/risk.ts) uses them.
 */
export const COMPLAINTS = "complaints";

export const COMPLAINT_CATEGORIES = [
  "refund-refused",
  "service-not-delivered",
  "closure-absconding",
  "misleading-sales",
  "price-dispute",
  "card-terms",
  "other",
] as const;
export const COMPLAINT_CLASSIFICATIONS = ["valid", "partly-valid", "invalid", "duplicate"] as const;
export const COMPLAINT_SEVERITIES = ["minor", "serious", "major"] as const;
export const COMPLAINT_OUTCOMES = [
  "mediated",
  "refund-ordered",
  "penalised",
  "referred",
  "dismissed",
] as const;
/** Complaints one consumer may file in a day (CST): enough for any real grievance, not for a flood. */
export const COMPLAINTS_PER_DAY = 20;

export type ComplaintStatus = "filed" | "classified" | "handled";

export interface Complaint {
  id: number;
  programme: Address;
  consumer: Address;
  category: string;
  detailsHash: Uint8Array;
  filedAt: number;
  filedHeight: number;
  status: ComplaintStatus;
  classification: string | null;
  severity: string | null;
  classifiedBy: Address | null;
  classifiedAt: number | null;
  outcome: string | null;
  noteHash: Uint8Array | null;
  handledBy: Address | null;
  handledAt: number | null;
}

const DAY_MS = 86_400_000;
const CST_OFFSET_MS = 8 * 3_600_000;
const COUNT = "n";
const pad = (n: number) => n.toString().padStart(12, "0");
const recordKey = (id: number) => `c:${pad(id)}`;
/** Per programme and per consumer: a counter, and the complaint ids by sequence number. */
const listCount = (kind: "p" | "u", a: Address) => `${kind}:${a}:n`;
const listKey = (kind: "p" | "u", a: Address, seq: number) => `${kind}:${a}:${pad(seq)}`;
const dailyKey = (a: Address, day: number) => `d:${a}:${day}`;
const STATUSES: readonly ComplaintStatus[] = ["filed", "classified", "handled"];
const TIME = Number.MAX_SAFE_INTEGER;

function encodeComplaint(c: Complaint): Uint8Array {
  return encode([
    c.programme,
    c.consumer,
    c.category,
    c.detailsHash,
    c.filedAt,
    c.filedHeight,
    c.status,
    c.classification,
    c.severity,
    c.classifiedBy,
    c.classifiedAt,
    c.outcome,
    c.noteHash,
    c.handledBy,
    c.handledAt,
  ]);
}

/** The stored record, checked field by field. */
export function decodeComplaint(id: number, raw: Uint8Array): Complaint {
  const S = "Complaint";
  const f = (n: string) => fieldAt(S, n);
  const a = readArray(decode(raw, S, 4096), f(""), 15);
  const addr = (v: unknown, n: string) => readString(v, f(n), { max: 42, pattern: ADDRESS_RE }) as Address;
  const word = (v: unknown, n: string) => readString(v, f(n), { max: 32 });
  const status = word(a[6], "status") as ComplaintStatus;
  if (!STATUSES.includes(status))
    throw new ContractError("STATE_CORRUPT", `complaint ${id}: status ${status}`);
  return {
    id,
    programme: addr(a[0], "programme"),
    consumer: addr(a[1], "consumer"),
    category: word(a[2], "category"),
    detailsHash: readBytes(a[3], f("detailsHash"), 32),
    filedAt: readUint(a[4], f("filedAt"), TIME),
    filedHeight: readUint(a[5], f("filedHeight"), TIME),
    status,
    classification: readNullable(a[7], (v) => word(v, "classification")),
    severity: readNullable(a[8], (v) => word(v, "severity")),
    classifiedBy: readNullable(a[9], (v) => addr(v, "classifiedBy")),
    classifiedAt: readNullable(a[10], (v) => readUint(v, f("classifiedAt"), TIME)),
    outcome: readNullable(a[11], (v) => word(v, "outcome")),
    noteHash: readNullable(a[12], (v) => readBytes(v, f("noteHash"), 32)),
    handledBy: readNullable(a[13], (v) => addr(v, "handledBy")),
    handledAt: readNullable(a[14], (v) => readUint(v, f("handledAt"), TIME)),
  };
}

export function complaintJson(c: Complaint): Record<string, unknown> {
  return {
    ...c,
    detailsHash: `0x${toHex(c.detailsHash)}`,
    noteHash: c.noteHash === null ? null : `0x${toHex(c.noteHash)}`,
  };
}

function oneOf(v: unknown, where: string, field: string, allowed: readonly string[]): string {
  const s = parseArgs(where, () => readString(v, fieldAt(where, field), { max: 32 }));
  if (!allowed.includes(s))
    throw new ContractError("INVALID_ARGUMENTS", `${where}: ${field} must be one of ${allowed.join(", ")}`);
  return s;
}

function hashArg(v: unknown, where: string, field: string): Uint8Array {
  const s = parseArgs(where, () => readString(v, fieldAt(where, field), { max: 66 }));
  if (!HASH_RE.test(s))
    throw new ContractError(
      "INVALID_ARGUMENTS",
      `${where}: ${field} must be the SM3 hash of the document kept off chain (0x + 64 lowercase hex)`,
    );
  return fromHex(s);
}

function idArg(v: unknown, where: string): number {
  return parseArgs(where, () => readUint(v, fieldAt(where, "id")));
}

async function readComplaint(ctx: ContractContext, id: number): Promise<Complaint> {
  const raw = await ctx.get(recordKey(id));
  if (raw === undefined) throw new ContractError("COMPLAINT_NOT_FOUND", `there is no complaint ${id}`);
  return decodeComplaint(id, raw);
}

function save(ctx: ContractContext, c: Complaint): void {
  ctx.set(recordKey(c.id), encodeComplaint(c));
}

const topics = (c: Complaint) => [c.programme, c.consumer, `complaint:${c.id}`];

async function append(ctx: ContractContext, kind: "p" | "u", a: Address, id: number): Promise<void> {
  const n = Number(await ctx.getAmount(listCount(kind, a)));
  ctx.set(listKey(kind, a, n), encode(id));
  ctx.setAmount(listCount(kind, a), BigInt(n + 1));
}

export const complaintsContract: SystemContract = {
  name: COMPLAINTS,
  methods: {
    /** file(programme, category, detailsHash) -> { id }: a consumer reports a programme. */
    file: async (ctx, args) => {
      const W = "complaints.file";
      const consumer = (await requireRole(ctx, "consumer", "filing a complaint")).address;
      const programme = parseArgs(W, () =>
        parseAddress(readString(args[0], fieldAt(W, "programme"), { max: 42 })),
      );
      const category = oneOf(args[1], W, "category", COMPLAINT_CATEGORIES);
      const detailsHash = hashArg(args[2], W, "detailsHash");
      if ((await readInstance(ctx, programme)) === undefined)
        throw new ContractError(
          "PROGRAMME_NOT_FOUND",
          `${programme} is not a contract instance on this chain`,
        );
      const day = Math.floor((ctx.env.timestamp + CST_OFFSET_MS) / DAY_MS);
      const today = Number(await ctx.getAmount(dailyKey(consumer, day)));
      if (today >= COMPLAINTS_PER_DAY)
        throw new ContractError(
          "COMPLAINT_LIMIT_REACHED",
          `${consumer} has filed ${today} complaints today; the limit is ${COMPLAINTS_PER_DAY} a day`,
        );
      ctx.setAmount(dailyKey(consumer, day), BigInt(today + 1));
      const id = Number(await ctx.getAmount(COUNT)) + 1;
      ctx.setAmount(COUNT, BigInt(id));
      const c: Complaint = {
        id,
        programme,
        consumer,
        category,
        detailsHash,
        filedAt: ctx.env.timestamp,
        filedHeight: ctx.env.height,
        status: "filed",
        classification: null,
        severity: null,
        classifiedBy: null,
        classifiedAt: null,
        outcome: null,
        noteHash: null,
        handledBy: null,
        handledAt: null,
      };
      save(ctx, c);
      await append(ctx, "p", programme, id);
      await append(ctx, "u", consumer, id);
      ctx.emit("ComplaintFiled", [id, programme, consumer, category, detailsHash], topics(c));
      return { id };
    },

    /** classify(id, classification, severity): the regulator; again until it is handled. */
    classify: async (ctx, args) => {
      const W = "complaints.classify";
      const by = (await requireRole(ctx, "regulator", "classifying a complaint")).address;
      const c = await readComplaint(ctx, idArg(args[0], W));
      const classification = oneOf(args[1], W, "classification", COMPLAINT_CLASSIFICATIONS);
      const severity = oneOf(args[2], W, "severity", COMPLAINT_SEVERITIES);
      if (c.status === "handled")
        throw new ContractError(
          "COMPLAINT_CLOSED",
          `complaint ${c.id} was handled (${c.outcome}) and is closed`,
        );
      Object.assign(c, {
        status: "classified",
        classification,
        severity,
        classifiedBy: by,
        classifiedAt: ctx.env.timestamp,
      });
      save(ctx, c);
      ctx.emit("ComplaintClassified", [c.id, c.programme, classification, severity, by], topics(c));
      return complaintJson(c);
    },

    /** handle(id, outcome, noteHash): the regulator records how it was handled; closes it. */
    handle: async (ctx, args) => {
      const W = "complaints.handle";
      const by = (await requireRole(ctx, "regulator", "handling a complaint")).address;
      const c = await readComplaint(ctx, idArg(args[0], W));
      const outcome = oneOf(args[1], W, "outcome", COMPLAINT_OUTCOMES);
      const noteHash = hashArg(args[2], W, "noteHash");
      if (c.status === "handled")
        throw new ContractError("COMPLAINT_CLOSED", `complaint ${c.id} was handled (${c.outcome}) already`);
      if (c.status !== "classified")
        throw new ContractError(
          "COMPLAINT_NOT_CLASSIFIED",
          `complaint ${c.id} must be classified before its handling is recorded`,
        );
      Object.assign(c, { status: "handled", outcome, noteHash, handledBy: by, handledAt: ctx.env.timestamp });
      save(ctx, c);
      ctx.emit("ComplaintHandled", [c.id, c.programme, outcome, noteHash, by], topics(c));
      return complaintJson(c);
    },
  },
  queries: {
    get: async (ctx, args) => complaintJson(await readComplaint(ctx, idArg(args[0], "complaints.get"))),

    /**
     * list(filter?, limit?, before?): newest first; filter {programme?, consumer?, status?}
     * (a programme or a consumer: their own lists; otherwise every complaint); at most 500.
     */
    list: async (ctx, args) => {
      const W = "complaints.list";
      const f = (args[0] ?? {}) as Record<string, unknown>;
      if (typeof f !== "object" || Array.isArray(f) || f instanceof Uint8Array)
        throw new ContractError("INVALID_ARGUMENTS", `${W}: the filter is {programme?, consumer?, status?}`);
      const get = (k: string) => (f instanceof Map ? f.get(k) : f[k]);
      const programme = get("programme");
      const consumer = get("consumer");
      const status = get("status");
      for (const [k, v] of [
        ["programme", programme],
        ["consumer", consumer],
      ] as const)
        if (v !== undefined && v !== null && (typeof v !== "string" || !ADDRESS_RE.test(v)))
          throw new ContractError("INVALID_ARGUMENTS", `${W}: ${k} must be an address`);
      if (status !== undefined && status !== null && !STATUSES.includes(status as ComplaintStatus))
        throw new ContractError("INVALID_ARGUMENTS", `${W}: status must be one of ${STATUSES.join(", ")}`);
      const limit =
        args[1] === undefined || args[1] === null
          ? 100
          : Math.min(
              500,
              parseArgs(W, () => readUint(args[1], fieldAt(W, "limit"))),
            );
      const out: Record<string, unknown>[] = [];
      const keep = (c: Complaint) =>
        (programme == null || c.programme === programme) &&
        (consumer == null || c.consumer === consumer) &&
        (status == null || c.status === status);
      if (typeof programme === "string" || typeof consumer === "string") {
        const [kind, a] =
          typeof programme === "string" ? (["p", programme] as const) : (["u", consumer as string] as const);
        const n = Number(await ctx.getAmount(listCount(kind, a as Address)));
        for (let seq = n - 1; seq >= 0 && out.length < limit; seq--) {
          const raw = await ctx.get(listKey(kind, a as Address, seq));
          if (raw === undefined) continue;
          const c = await readComplaint(ctx, Number(decode(raw, "ComplaintRef", 16)));
          if (keep(c)) out.push(complaintJson(c));
        }
        return out;
      }
      const n = Number(await ctx.getAmount(COUNT));
      for (let id = n; id >= 1 && out.length < limit; id--) {
        const c = await readComplaint(ctx, id);
        if (keep(c)) out.push(complaintJson(c));
      }
      return out;
    },

    /** params(): the categories, classifications, severities and outcomes this chain knows. */
    params: async () => ({
      categories: COMPLAINT_CATEGORIES,
      classifications: COMPLAINT_CLASSIFICATIONS,
      severities: COMPLAINT_SEVERITIES,
      outcomes: COMPLAINT_OUTCOMES,
      perDay: COMPLAINTS_PER_DAY,
    }),
  },
};
