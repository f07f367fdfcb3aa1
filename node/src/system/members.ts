import { decode, encode, fieldAt, readArray, readBytes, readString, readUint } from "@custos/codec";
import { type Address, addressFromPublicKey, parseAddress } from "@custos/crypto";
import type { EcnyTier, Genesis, Role } from "@custos/types";
import { fromHex, toHex } from "@custos/utils";
import { stateKey } from "../state/keys.js";
import type { StateReader, WriteSet } from "../state/overlay.js";
import { type ContractContext, ContractError, parseArgs, type SystemContract } from "./contract.js";
import { executedProposals } from "./proposals.js";

export const MEMBERS = "members";

export interface Member {
  address: Address;
  name: string;
  roles: Role[];
  ecnyTier: EcnyTier;
  publicKey: Uint8Array;
}

/** The registry's own key for a member (VM contracts read it synchronously, see execution/vmCall.ts). */
export function memberKey(address: Address): string {
  return `m:${address}`;
}

/** Where a member's institution (member.institution proposals) is kept: the institution's address. */
export function institutionKey(address: Address): string {
  return `inst:${address}`;
}

export async function institutionOf(ctx: ContractContext, address: Address): Promise<string | null> {
  const raw = await ctx.getOf(MEMBERS, institutionKey(address));
  return raw === undefined ? null : new TextDecoder().decode(raw);
}

export function encodeMember(m: Member): Uint8Array {
  return encode([m.name, m.roles, m.ecnyTier, m.publicKey]);
}

/**
 * Member records decoded, by the stored bytes they came from: the ledger's state cache hands out
 * the same array for the same record until it changes, and a transfer reads its sender's record
 * three times (the executor's membership check, the recipient check, the sender's limits).
 * Decoding is a pure function of the bytes; the records handed out are frozen.
 */
const decodedMembers = new WeakMap<Uint8Array, Member>();

export function decodeMember(address: Address, raw: Uint8Array): Member {
  const known = decodedMembers.get(raw);
  if (known !== undefined && known.address === address) return known;
  const m = decodeMemberBytes(address, raw);
  Object.freeze(m.roles);
  decodedMembers.set(raw, Object.freeze(m));
  return m;
}

function decodeMemberBytes(address: Address, raw: Uint8Array): Member {
  const S = "Member";
  const a = readArray(decode(raw, S, 4096), fieldAt(S, ""), 4);
  return {
    address,
    name: readString(a[0], fieldAt(S, "name"), { max: 64 }),
    roles: readArray(a[1], fieldAt(S, "roles")).map(
      (r) => readString(r, fieldAt(S, "roles"), { max: 32 }) as Role,
    ),
    ecnyTier: readUint(a[2], fieldAt(S, "ecnyTier"), 4) as EcnyTier,
    publicKey: readBytes(a[3], fieldAt(S, "publicKey"), 33),
  };
}

/** The member registry as genesis writes it. */
export function genesisMemberWrites(genesis: Genesis, writes: WriteSet): void {
  for (const m of genesis.members) {
    const key = stateKey(MEMBERS, memberKey(m.address));
    writes.set(toHex(key), { key, value: encodeMember(m) });
  }
}

export async function readMember(state: StateReader, address: Address): Promise<Member | undefined> {
  const raw = await state.get(stateKey(MEMBERS, memberKey(address)));
  return raw === undefined ? undefined : decodeMember(address, raw);
}

/** Whether `address` is registered: the record's presence, not decoded (admission asks per tx). */
export async function isRegistered(state: StateReader, address: Address): Promise<boolean> {
  return (await state.get(stateKey(MEMBERS, memberKey(address)))) !== undefined;
}

export async function memberOf(ctx: ContractContext, address: Address): Promise<Member | undefined> {
  const raw = await ctx.getOf(MEMBERS, memberKey(address));
  return raw === undefined ? undefined : decodeMember(address, raw);
}

/** Throws NOT_AUTHORIZED unless the sender holds `role`. */
export async function requireRole(ctx: ContractContext, role: Role, action: string): Promise<Member> {
  const m = await memberOf(ctx, ctx.env.sender);
  if (m === undefined || !m.roles.includes(role)) {
    throw new ContractError(
      "NOT_AUTHORIZED",
      `${action} needs the ${role} role; ${ctx.env.sender} does not have it`,
      {
        role,
      },
    );
  }
  return m;
}

export function memberJson(m: Member): Record<string, unknown> {
  return {
    address: m.address,
    name: m.name,
    roles: m.roles,
    ecnyTier: m.ecnyTier,
    publicKey: toHex(m.publicKey),
  };
}

/**
 * Every current member: those of genesis, then those added by executed member.add proposals, in
 * that order, each as it is now (roles changed, or gone when removed). Read from the state the
 * registry and governance already keep, so listing needs no index of its own.
 */
async function listMembers(ctx: ContractContext): Promise<Member[]> {
  const candidates: Address[] = ctx.env.genesis.members.map((m) => m.address);
  for (const p of await executedProposals(ctx, "member.add")) {
    try {
      candidates.push(addressFromPublicKey(fromHex(String(p.payload.publicKey))));
    } catch {
      // an executed member.add always had a valid key; nothing to list otherwise
    }
  }
  const out: Member[] = [];
  const seen = new Set<string>();
  for (const a of candidates) {
    if (seen.has(a)) continue;
    seen.add(a);
    const m = await memberOf(ctx, a);
    if (m !== undefined) out.push(m);
  }
  return out;
}

/** The member registry; members and roles change by governance proposals (memberProposals.ts). */
export const membersContract: SystemContract = {
  name: MEMBERS,
  methods: {},
  queries: {
    /** list(role?): every current member (genesis first, then by admission), optionally of one role. */
    list: async (ctx, args) => {
      const role =
        args[0] === undefined || args[0] === null
          ? null
          : parseArgs("members.list", () =>
              readString(args[0], fieldAt("members.list", "role"), { max: 32 }),
            );
      const all = await listMembers(ctx);
      return all.filter((m) => role === null || m.roles.includes(role as Role)).map(memberJson);
    },
    get: async (ctx, args) => {
      const address = parseArgs("members.get", () =>
        parseAddress(readString(args[0], fieldAt("members.get", "address"), { max: 42 })),
      );
      const m = await memberOf(ctx, address);
      if (m === undefined) throw new ContractError("MEMBER_NOT_FOUND", `${address} is not a member`);
      return { ...memberJson(m), institution: await institutionOf(ctx, address) };
    },
  },
};
