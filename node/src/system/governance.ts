import { fieldAt, readBool, readString, readUint } from "@custos/codec";
import { type ContractContext, ContractError, parseArgs, type SystemContract } from "./contract.js";
import { memberKindHandlers } from "./memberProposals.js";
import { memberOf, requireRole } from "./members.js";
import {
  COUNT,
  GOVERNANCE,
  type KindHandler,
  openProposal,
  type Proposal,
  proposalJson,
  readProposal,
  saveProposal,
} from "./proposals.js";
import { templateKindHandlers } from "./templates.js";
import { validatorKindHandlers } from "./validators.js";

export { GOVERNANCE } from "./proposals.js";

/** Every kind a proposal can be, and what it does: assembled here, defined with what it governs. */
const KINDS: Record<string, KindHandler> = {
  ...templateKindHandlers,
  ...memberKindHandlers,
  ...validatorKindHandlers,
};
const kinds = () => KINDS;

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
      saveProposal(ctx, p);
      ctx.as(GOVERNANCE).emit("ProposalVetoed", [id, ctx.env.sender, reason], [`proposal:${id}`]);
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
  g.emit("Voted", [p.id, ctx.env.sender, approve], [`proposal:${p.id}`]);
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
    g.emit("ProposalExecuted", [p.id, p.kind], [`proposal:${p.id}`]);
  } else if (rejections >= threshold) {
    p.status = "rejected";
    p.closedHeight = ctx.env.height;
    await kinds()[p.kind]?.closed?.(ctx, p.payload, "rejected");
    g.emit("ProposalRejected", [p.id, p.kind], [`proposal:${p.id}`]);
  }
  saveProposal(ctx, p);
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
