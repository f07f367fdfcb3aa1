import { addressFromPublicKey } from "@custos/crypto";
import { ADDRESS_RE, type EcnyTier, ROLES, type Role } from "@custos/types";
import { fromHex } from "@custos/utils";
import { type ContractContext, ContractError } from "./contract.js";
import { encodeMember, institutionKey, MEMBERS, type Member, memberOf } from "./members.js";
import type { KindHandler } from "./proposals.js";

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function roles(p: Record<string, unknown>): Role[] {
  const r = p.roles;
  if (
    !Array.isArray(r) ||
    r.length === 0 ||
    r.some((x) => !(ROLES as readonly string[]).includes(x as string))
  ) {
    throw new ContractError("INVALID_ARGUMENTS", `payload.roles must list roles from ${ROLES.join(", ")}`);
  }
  return [...new Set(r as Role[])];
}

function address(p: Record<string, unknown>): string {
  if (typeof p.address !== "string" || !ADDRESS_RE.test(p.address)) {
    throw new ContractError(
      "INVALID_ARGUMENTS",
      "payload.address must be an address (0x + 40 lowercase hex)",
    );
  }
  return p.address;
}

async function existing(ctx: ContractContext, p: Record<string, unknown>): Promise<Member> {
  const m = await memberOf(ctx, address(p));
  if (m === undefined) throw new ContractError("MEMBER_NOT_FOUND", `${p.address} is not a member`);
  return m;
}

function newMember(p: Record<string, unknown>): Member {
  if (typeof p.publicKey !== "string" || !/^0[23][0-9a-f]{64}$/.test(p.publicKey)) {
    throw new ContractError(
      "INVALID_ARGUMENTS",
      "payload.publicKey must be a compressed SM2 public key in hex",
    );
  }
  if (typeof p.name !== "string" || !NAME_RE.test(p.name)) {
    throw new ContractError("INVALID_ARGUMENTS", `payload.name must match ${NAME_RE}`);
  }
  const tier = p.ecnyTier ?? 2;
  if (tier !== 1 && tier !== 2 && tier !== 3 && tier !== 4) {
    throw new ContractError("INVALID_ARGUMENTS", "payload.ecnyTier must be 1, 2, 3 or 4");
  }
  const publicKey = fromHex(p.publicKey);
  let addr: string;
  try {
    addr = addressFromPublicKey(publicKey);
  } catch {
    throw new ContractError("INVALID_ARGUMENTS", "payload.publicKey is not a point on the SM2 curve");
  }
  return { address: addr, name: p.name, roles: roles(p), ecnyTier: tier as EcnyTier, publicKey };
}

function store(ctx: ContractContext, m: Member): void {
  ctx.as(MEMBERS).set(`m:${m.address}`, encodeMember(m));
}

const COMMITTEE_COUNT = "committee-count";

/** Committee members now: kept from the first change on, counted from genesis until then. */
async function committeeCount(ctx: ContractContext): Promise<number> {
  const raw = await ctx.as(MEMBERS).get(COMMITTEE_COUNT);
  if (raw !== undefined) return Number(await ctx.as(MEMBERS).getAmount(COMMITTEE_COUNT));
  return ctx.env.genesis.members.filter((m) => m.roles.includes("committee")).length;
}

/**
 * Applies a change of `delta` committee seats; refuses one that would leave fewer committee
 * members than a proposal needs approvals (nothing could pass any more).
 */
async function changeCommittee(ctx: ContractContext, delta: number, dryRun: boolean): Promise<void> {
  if (delta === 0) return;
  const next = (await committeeCount(ctx)) + delta;
  const threshold = ctx.env.genesis.governance.threshold;
  if (next < threshold) {
    throw new ContractError(
      "COMMITTEE_BELOW_THRESHOLD",
      `this would leave ${next} committee member(s); proposals need ${threshold} approvals`,
    );
  }
  if (!dryRun) ctx.as(MEMBERS).setAmount(COMMITTEE_COUNT, BigInt(next));
}

const seat = (roles: readonly Role[]) => (roles.includes("committee") ? 1 : 0);

/** Member and role changes: by proposal only, never by one party. */
export const memberKindHandlers: Record<string, KindHandler> = {
  "member.add": {
    async validate(ctx, p) {
      const m = newMember(p);
      if ((await memberOf(ctx, m.address)) !== undefined) {
        throw new ContractError("MEMBER_EXISTS", `${m.address} is already a member`);
      }
    },
    async execute(ctx, p) {
      await this.validate(ctx, p);
      const m = newMember(p);
      await changeCommittee(ctx, seat(m.roles), false);
      store(ctx, m);
      ctx.as(MEMBERS).emit("MemberAdded", [m.address, m.name, m.roles], [m.address]);
    },
  },
  "member.remove": {
    async validate(ctx, p) {
      const m = await existing(ctx, p);
      await changeCommittee(ctx, -seat(m.roles), true);
    },
    async execute(ctx, p) {
      const m = await existing(ctx, p);
      await changeCommittee(ctx, -seat(m.roles), false);
      ctx.as(MEMBERS).delete(`m:${m.address}`);
      ctx.as(MEMBERS).emit("MemberRemoved", [m.address, m.name], [m.address]);
    },
  },
  /**
   * member.institution {address, institution}: which institution a member is a customer of
   * (null: none), for the e-CNY operator's clearing between institutions (packages/audit,
   * reconcile.ts). An institution is a member with the institution role; institutions are their
   * own. Kept apart from the member record so that the registry's format does not change.
   */
  "member.institution": {
    async validate(ctx, p) {
      await existing(ctx, p);
      const inst = p.institution;
      if (inst === null) return;
      if (typeof inst !== "string" || !ADDRESS_RE.test(inst))
        throw new ContractError(
          "INVALID_ARGUMENTS",
          "payload.institution must be an institution's address (0x + 40 lowercase hex) or null",
        );
      const i = await memberOf(ctx, inst);
      if (i === undefined || !i.roles.includes("institution"))
        throw new ContractError("NOT_AN_INSTITUTION", `${inst} is not a member with the institution role`);
    },
    async execute(ctx, p) {
      await this.validate(ctx, p);
      const m = await existing(ctx, p);
      const inst = (p.institution ?? null) as string | null;
      const members = ctx.as(MEMBERS);
      if (inst === null) members.delete(institutionKey(m.address));
      else members.set(institutionKey(m.address), new TextEncoder().encode(inst));
      members.emit("InstitutionSet", [m.address, inst], inst === null ? [m.address] : [m.address, inst]);
    },
  },
  "member.roles": {
    async validate(ctx, p) {
      const m = await existing(ctx, p);
      await changeCommittee(ctx, seat(roles(p)) - seat(m.roles), true);
    },
    async execute(ctx, p) {
      const m = await existing(ctx, p);
      await changeCommittee(ctx, seat(roles(p)) - seat(m.roles), false);
      store(ctx, { ...m, roles: roles(p) });
      ctx.as(MEMBERS).emit("MemberRolesChanged", [m.address, roles(p)], [m.address]);
    },
  },
};
