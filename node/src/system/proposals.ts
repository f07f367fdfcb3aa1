import {
  DecodeError,
  decode,
  encode,
  fieldAt,
  readArray,
  readBool,
  readNullable,
  readString,
  readUint,
} from "@custos/codec";
import type { Address } from "@custos/crypto";
import { ADDRESS_RE } from "@custos/types";
import { type ContractContext, ContractError } from "./contract.js";

/**
 * Proposal records and the interface of a proposal kind. Governance (the system contract that
 * opens, counts and carries out proposals) assembles the kinds; the contracts that define kinds
 * (templates, members, validators) import only this module, so nothing imports governance back.
 */
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
export const COUNT = "count";

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

const STATUSES: readonly ProposalStatus[] = ["open", "executed", "rejected", "vetoed"];
const TIME = Number.MAX_SAFE_INTEGER;

/** The stored record, checked field by field as the codec's readers do for every record. */
export function decodeProposal(id: number, raw: Uint8Array): Proposal {
  const S = "Proposal";
  const f = (name: string) => fieldAt(S, name);
  const a = readArray(decode(raw, S, 1 << 20), f(""), 10);
  const status = readString(a[6], f("status"), { max: 16 });
  if (!(STATUSES as readonly string[]).includes(status))
    throw new DecodeError("DECODE_OUT_OF_RANGE", S, "status", `unknown status ${status}`);
  const payload = JSON.parse(readString(a[1], f("payload"), { max: 1 << 20 })) as unknown;
  if (typeof payload !== "object" || payload === null || Array.isArray(payload))
    throw new DecodeError("DECODE_WRONG_TYPE", S, "payload", "expected a JSON object");
  return {
    id,
    kind: readString(a[0], f("kind"), { max: 32 }),
    payload: payload as Record<string, unknown>,
    proposer: readString(a[2], f("proposer"), { max: 42, pattern: ADDRESS_RE }) as Address,
    createdHeight: readUint(a[3], f("createdHeight"), TIME),
    createdTime: readUint(a[4], f("createdTime"), TIME),
    expiresAt: readUint(a[5], f("expiresAt"), TIME),
    status: status as ProposalStatus,
    votes: readArray(a[7], f("votes")).map((v, i) => {
      const t = readArray(v, f(`votes[${i}]`), 3);
      return {
        voter: readString(t[0], f(`votes[${i}].voter`), { max: 42, pattern: ADDRESS_RE }) as Address,
        approve: readBool(t[1], f(`votes[${i}].approve`)),
        height: readUint(t[2], f(`votes[${i}].height`), TIME),
      };
    }),
    closedHeight: readNullable(a[8], (v) => readUint(v, f("closedHeight"), TIME)),
    veto: readNullable(a[9], (v) => {
      const t = readArray(v, f("veto"), 2);
      return {
        by: readString(t[0], f("veto.by"), { max: 42, pattern: ADDRESS_RE }) as Address,
        reason: readString(t[1], f("veto.reason"), { max: 256 }),
      };
    }),
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

export function saveProposal(ctx: ContractContext, p: Proposal): void {
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
  saveProposal(ctx, p);
  g.emit("ProposalCreated", [id, kind, ctx.env.sender, p.expiresAt], [`proposal:${id}`]);
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

/** Reads a string field of a proposal payload. */
export function payloadString(p: Record<string, unknown>, field: string, re: RegExp): string {
  const v = p[field];
  if (typeof v !== "string" || !re.test(v)) {
    throw new ContractError("INVALID_ARGUMENTS", `payload.${field} must match ${re}`);
  }
  return v;
}
