import { decode, encode, fieldAt, readBool, readString, readUint } from "@custos/codec";
import type { Address } from "@custos/crypto";
import { type ContractContext, ContractError, parseArgs, type SystemContract } from "./contract.js";
import { memberKindHandlers } from "./memberProposals.js";
import { memberOf, requireRole } from "./members.js";
import { templateKindHandlers } from "./templates.js";
import { validatorKindHandlers } from "./validators.js";

export const GOVERNANCE = "governance";

/** What a proposal kind does: check its payload when proposed, carry it out when passed. */
export interface KindHandler {
  validate(ctx: ContractContext, payload: Record<string, unknown>): Promise<void>;
  execute(ctx: ContractContext, payload: Record<string, unknown>, proposalId: number): Promise<void>;
  /** Called when the proposal is rejected or vetoed. */
  closed?(
    ctx: ContractContext,
    payload: Record<string, unknown>,
    status: "rejected" | "vetoed",
  ): Promise<void>;
  /** Whether the regulator may veto this kind. */
  vetoable?: boolean;
  /** Only opened by another system contract (templates.submit), never by governance.propose. */
  internal?: boolean;
}

let kindTable: Record<string, KindHandler> | undefined;
/** Built on first use: templates.ts and governance.ts import each other. */
function kinds(): Record<string, KindHandler> {
  kindTable ??= { ...templateKindHandlers, ...memberKindHandlers, ...validatorKindHandlers };
  return kindTable;
}

export type ProposalStatus = "open" | "executed" | "rejected" | "vetoed";

export interface Proposal {
  id: number;
  kind: string;
  payload: Record<string, unknown>;
  proposer: Address;
  createdHeight: number;
  createdTime: number;
  expiresAt: number;
  status: ProposalStatus;
  votes: { voter: Address; approve: boolean; height: number }[];
  closedHeight: number | null;
  veto: { by: Address; reason: string } | null;
}

const proposalKey = (id: number) => `p:${id.toString().padStart(12, "0")}`;
const COUNT = "count";

function encodeProposal(p: Proposal): Uint8Array {
  return encode([
    p.kind,
    JSON.stringify(p.payload),
    p.proposer,
    p.createdHeight,
    p.createdTime,
    p.expiresAt,
    p.status,
    p.votes.map((v) => [v.voter, v.approve, v.height]),
    p.closedHeight,
    p.veto === null ? null : [p.veto.by, p.veto.reason],
  ]);
}

function decodeProposal(id: number, raw: Uint8Array): Proposal {
  const a = decode(raw, "Proposal", 1 << 20) as unknown[];
  const veto = a[9] as [Address, string] | null;
  return {
    id,
    kind: a[0] as string,
    payload: JSON.parse(a[1] as string) as Record<string, unknown>,
    proposer: a[2] as Address,
    createdHeight: Number(a[3]),
    createdTime: Number(a[4]),
    expiresAt: Number(a[5]),
    status: a[6] as ProposalStatus,
    votes: (a[7] as [Address, boolean, number][]).map(([voter, approve, height]) => ({
      voter,
      approve,
      height: Number(height),
    })),
    closedHeight: a[8] === null ? null : Number(a[8]),
    veto: veto === null ? null : { by: veto[0], reason: veto[1] },
  };
}

export async function readProposal(ctx: ContractContext, id: number): Promise<Proposal> {
  const raw = await ctx.as(GOVERNANCE).get(proposalKey(id));
  if (raw === undefined) throw new ContractError("PROPOSAL_NOT_FOUND", `there is no proposal ${id}`);
  return decodeProposal(id, raw);
}

/** The proposals of `kind` that passed and were carried out, oldest first. */
export async function executedProposals(ctx: ContractContext, kind: string): Promise<Proposal[]> {
  const count = Number(await ctx.as(GOVERNANCE).getAmount(COUNT));
  const out: Proposal[] = [];
  for (let id = 1; id <= count; id++) {
    const p = await readProposal(ctx, id);
    if (p.kind === kind && p.status === "executed") out.push(p);
  }
  return out;
}

function save(ctx: ContractContext, p: Proposal): void {
  ctx.as(GOVERNANCE).set(proposalKey(p.id), encodeProposal(p));
}

/** Opens a proposal (templates.submit calls this for template approvals). Returns its id. */
export async function openProposal(
  ctx: ContractContext,
  kind: string,
  payload: Record<string, unknown>,
  ttlMs?: number,
): Promise<number> {
  const g = ctx.as(GOVERNANCE);
  const id = Number(await g.getAmount(COUNT)) + 1;
  g.setAmount(COUNT, BigInt(id));
  const p: Proposal = {
    id,
    kind,
    payload,
    proposer: ctx.env.sender,
    createdHeight: ctx.env.height,
    createdTime: ctx.env.timestamp,
    expiresAt: ctx.env.timestamp + (ttlMs ?? ctx.env.genesis.governance.proposalTtlMs),
    status: "open",
    votes: [],
    closedHeight: null,
    veto: null,
  };
  save(ctx, p);
  g.emit("ProposalCreated", [id, kind, ctx.env.sender, p.expiresAt]);
  return id;
}

export function proposalJson(p: Proposal, now: number, threshold: number): Record<string, unknown> {
  const approvals = p.votes.filter((v) => v.approve).length;
  return {
    id: p.id,
    kind: p.kind,
    payload: p.payload,
    proposer: p.proposer,
    createdHeight: p.createdHeight,
    createdTime: p.createdTime,
    expiresAt: p.expiresAt,
    status: p.status === "open" && now > p.expiresAt ? "expired" : p.status,
    approvals,
    rejections: p.votes.length - approvals,
    threshold,
    votes: p.votes,
    closedHeight: p.closedHeight,
    veto: p.veto,
  };
}

function proposalId(v: unknown, where: string): number {
  return parseArgs(where, () => readUint(v, fieldAt(where, "id")));
}

async function openOrThrow(ctx: ContractContext, id: number): Promise<Proposal> {
  const p = await readProposal(ctx, id);
  if (p.status !== "open") {
    throw new ContractError("PROPOSAL_CLOSED", `proposal ${id} is ${p.status}`, { status: p.status });
  }
  if (ctx.env.timestamp > p.expiresAt) {
    throw new ContractError(
      "PROPOSAL_EXPIRED",
      `proposal ${id} expired at ${new Date(p.expiresAt).toISOString()}; open a new one`,
    );
  }
  return p;
}

/**
 * Proposals, votes and their execution. Committee members propose (which counts as their
 * approval) and vote; a proposal passes
 * when its approvals reach the genesis threshold and is carried out in the same transaction; it
 * is rejected when its rejections reach the threshold; past its expiry it can no longer pass.
 * The regulator may veto template approvals. Every step is an event and stays in the record.
 */
export const governanceContract: SystemContract = {
  name: GOVERNANCE,
  methods: {
    /** propose(kind, payloadJson, ttlSeconds?) */
    propose: async (ctx, args) => {
      const W = "governance.propose";
      await requireRole(ctx, "committee", "opening a proposal");
      const kind = parseArgs(W, () => readString(args[0], fieldAt(W, "kind"), { max: 32 }));
      const KINDS = kinds();
      const handler = Object.hasOwn(KINDS, kind) ? KINDS[kind] : undefined;
      if (handler === undefined || handler.internal) {
        const known = Object.keys(KINDS).filter((k) => !KINDS[k]?.internal);
        throw new ContractError("PROPOSAL_KIND_UNKNOWN", `no proposal kind ${kind} (${known.join(", ")})`);
      }
      const payload = parsePayload(args[1], W);
      const ttl =
        args[2] === undefined || args[2] === null
          ? undefined
          : parseArgs(W, () => readUint(args[2], fieldAt(W, "ttlSeconds"))) * 1000;
      if (ttl !== undefined && (ttl < 1000 || ttl > 365 * 86_400_000)) {
        throw new ContractError("INVALID_ARGUMENTS", `${W}: ttlSeconds must be between 1 and 365 days`);
      }
      await handler.validate(ctx, payload);
      const id = await openProposal(ctx, kind, payload, ttl);
      // the proposer is a committee member: proposing counts as its approval
      return castVote(ctx, await readProposal(ctx, id), true);
    },

    /** vote(id, approve) */
    vote: async (ctx, args) => {
      const W = "governance.vote";
      const id = proposalId(args[0], W);
      const approve = parseArgs(W, () => readBool(args[1], fieldAt(W, "approve")));
      await requireRole(ctx, "committee", "voting on a proposal");
      return castVote(ctx, await openOrThrow(ctx, id), approve);
    },

    /** veto(id, reason): the regulator stops a template approval. */
    veto: async (ctx, args) => {
      const W = "governance.veto";
      const id = proposalId(args[0], W);
      const reason = parseArgs(W, () => readString(args[1], fieldAt(W, "reason"), { max: 256 }));
      if (reason.length === 0) throw new ContractError("INVALID_ARGUMENTS", `${W}: a veto needs a reason`);
      await requireRole(ctx, "regulator", "vetoing a proposal");
      const p = await openOrThrow(ctx, id);
      if (!kinds()[p.kind]?.vetoable) {
        throw new ContractError("VETO_NOT_ALLOWED", `the regulator cannot veto a ${p.kind} proposal`);
      }
      p.status = "vetoed";
      p.closedHeight = ctx.env.height;
      p.veto = { by: ctx.env.sender, reason };
      await kinds()[p.kind]?.closed?.(ctx, p.payload, "vetoed");
      save(ctx, p);
      ctx.as(GOVERNANCE).emit("ProposalVetoed", [id, ctx.env.sender, reason]);
      return { id, status: p.status };
    },
  },
  queries: {
    get: async (ctx, args) => {
      const p = await readProposal(ctx, proposalId(args[0], "governance.get"));
      return proposalJson(p, ctx.env.timestamp, ctx.env.genesis.governance.threshold);
    },
    /** list(status?, limit?): newest first. */
    list: async (ctx, args) => {
      const W = "governance.list";
      const status =
        args[0] === undefined || args[0] === null
          ? null
          : parseArgs(W, () => readString(args[0], fieldAt(W, "status"), { max: 16 }));
      const limit = args[1] === undefined || args[1] === null ? 100 : Math.min(1000, proposalId(args[1], W));
      const count = Number(await ctx.as(GOVERNANCE).getAmount(COUNT));
      const out: Record<string, unknown>[] = [];
      for (let id = count; id >= 1 && out.length < limit; id--) {
        const j = proposalJson(
          await readProposal(ctx, id),
          ctx.env.timestamp,
          ctx.env.genesis.governance.threshold,
        );
        if (status === null || j.status === status) out.push(j);
      }
      return out;
    },
    params: async (ctx) => ({
      threshold: ctx.env.genesis.governance.threshold,
      proposalTtlMs: ctx.env.genesis.governance.proposalTtlMs,
      kinds: Object.keys(kinds()),
    }),
  },
};

/** Records a committee member's vote; carries the proposal out or closes it when the count says so. */
async function castVote(ctx: ContractContext, p: Proposal, approve: boolean) {
  if (p.votes.some((v) => v.voter === ctx.env.sender)) {
    throw new ContractError("ALREADY_VOTED", `${ctx.env.sender} has already voted on proposal ${p.id}`);
  }
  p.votes.push({ voter: ctx.env.sender, approve, height: ctx.env.height });
  const g = ctx.as(GOVERNANCE);
  g.emit("Voted", [p.id, ctx.env.sender, approve]);
  const threshold = ctx.env.genesis.governance.threshold;
  // only the votes of members who are on the committee now count
  const current: boolean[] = [];
  for (const v of p.votes) current.push((await memberOf(ctx, v.voter))?.roles.includes("committee") === true);
  const approvals = p.votes.filter((v, i) => v.approve && current[i]).length;
  const rejections = p.votes.filter((v, i) => !v.approve && current[i]).length;
  if (approvals >= threshold) {
    const handler = kinds()[p.kind] as KindHandler;
    await handler.execute(ctx, p.payload, p.id);
    p.status = "executed";
    p.closedHeight = ctx.env.height;
    g.emit("ProposalExecuted", [p.id, p.kind]);
  } else if (rejections >= threshold) {
    p.status = "rejected";
    p.closedHeight = ctx.env.height;
    await kinds()[p.kind]?.closed?.(ctx, p.payload, "rejected");
    g.emit("ProposalRejected", [p.id, p.kind]);
  }
  save(ctx, p);
  return { id: p.id, status: p.status, approvals, threshold };
}

function parsePayload(v: unknown, where: string): Record<string, unknown> {
  const text = parseArgs(where, () => readString(v, fieldAt(where, "payload"), { max: 8192 }));
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch {
    throw new ContractError("INVALID_ARGUMENTS", `${where}: the payload is not JSON`);
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
    throw new ContractError("INVALID_ARGUMENTS", `${where}: the payload must be a JSON object`);
  }
  return payload as Record<string, unknown>;
}

/** Reads a string field of a proposal payload. */
export function payloadString(p: Record<string, unknown>, field: string, re: RegExp): string {
  const v = p[field];
  if (typeof v !== "string" || !re.test(v)) {
    throw new ContractError("INVALID_ARGUMENTS", `payload.${field} must match ${re}`);
  }
  return v;
}
