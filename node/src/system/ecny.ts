import { decode, encode, fieldAt, readArray, readSafeU64, readString, readU64 } from "@custos/codec";
import { type Address, parseAddress } from "@custos/crypto";
import { toHex } from "@custos/utils";
import { type ContractContext, ContractError, parseArgs, type SystemContract } from "./contract.js";
import { memberOf, requireRole } from "./members.js";
import { readInstance } from "./templates.js";

export const ECNY = "ecny";

const DAY_MS = 86_400_000;
/** Daily limits reset at midnight China Standard Time (UTC+8). */
const CST_OFFSET_MS = 8 * 3_600_000;
const RECHARGE_ID_RE = /^[A-Za-z0-9._:-]{1,64}$/;

const balanceKey = (a: Address) => `b:${a}`;
const frozenKey = (a: Address) => `f:${a}`;
const rechargeKey = (id: string) => `r:${id}`;
const spentKey = (a: Address, day: number) => `d:${a}:${day}`;
const SUPPLY = "supply";

function address(v: unknown, where: string, field: string): Address {
  return parseArgs(where, () => parseAddress(readString(v, fieldAt(where, field), { max: 42 })));
}

function amount(v: unknown, where: string): bigint {
  const a = parseArgs(where, () => readU64(v, fieldAt(where, "amount")));
  if (a === 0n) throw new ContractError("INVALID_AMOUNT", `${where}: the amount must be at least 1 fen`);
  return a;
}

async function frozenReason(ctx: ContractContext, a: Address): Promise<string | undefined> {
  const raw = await ctx.get(frozenKey(a));
  if (raw === undefined) return undefined;
  // [reason, height frozen at]
  const [reason, height] = readArray(decode(raw, "Frozen", 1024), fieldAt("Frozen", ""), 2);
  readSafeU64(height, fieldAt("Frozen", "height"));
  return readString(reason, fieldAt("Frozen", "reason"), { max: 256 });
}

async function requireNotFrozen(ctx: ContractContext, a: Address, who: string): Promise<void> {
  const reason = await frozenReason(ctx, a);
  if (reason !== undefined) {
    throw new ContractError(
      "ECNY_ACCOUNT_FROZEN",
      `the ${who} account ${a} is frozen by the regulator: ${reason}`,
      {
        address: a,
      },
    );
  }
}

/**
 * e-CNY goes only to an account someone holds: a member's wallet or a contract instance's
 * balance. Money sent to any other address could never be spent (nobody on this chain signs
 * for it), so every payment into one is refused, by every node alike.
 */
async function requireAccount(ctx: ContractContext, a: Address): Promise<void> {
  if ((await memberOf(ctx, a)) !== undefined) return;
  if ((await readInstance(ctx, a)) !== undefined) return;
  throw new ContractError(
    "ECNY_RECIPIENT_NOT_MEMBER",
    `${a} is neither a member of this chain nor a contract: e-CNY sent there could never be spent`,
    { address: a },
  );
}

/** The e-CNY balance of an account as a contract sees it inside a VM call (no awaiting). */
export function balanceKeyOf(a: Address): string {
  return balanceKey(a);
}

/**
 * A contract paying out of its own balance: neither account frozen, the contract holds the
 * amount. Wallet-tier limits are for members' wallets (payFromWallet), not for escrow payouts.
 */
export async function moveFen(ctx: ContractContext, from: Address, to: Address, amt: bigint): Promise<void> {
  const e = ctx.as(ECNY);
  await requireAccount(e, to);
  await requireNotFrozen(e, from, "sending");
  await requireNotFrozen(e, to, "receiving");
  await debitCredit(e, from, to, amt);
}

/**
 * A member paying from its own wallet (ecny.transfer, or e-CNY attached to a contract call):
 * neither account frozen, within the payer's wallet-tier single and daily limits, and covered by
 * its balance. Returns what the payer keeps.
 */
export async function payFromWallet(
  ctx: ContractContext,
  from: Address,
  to: Address,
  amt: bigint,
): Promise<bigint> {
  const e = ctx.as(ECNY);
  await requireAccount(e, to);
  await requireNotFrozen(e, from, "sending");
  await requireNotFrozen(e, to, "receiving");
  const sender = await memberOf(e, from);
  const limits = e.env.genesis.ecny.tiers[sender?.ecnyTier ?? 4];
  if (amt > limits.singleLimit) {
    throw new ContractError(
      "ECNY_SINGLE_LIMIT_EXCEEDED",
      `${amt} fen exceeds the single-payment limit of ${limits.singleLimit} fen for tier ${sender?.ecnyTier ?? 4}`,
    );
  }
  const day = Math.floor((e.env.timestamp + CST_OFFSET_MS) / DAY_MS);
  const spent = await e.getAmount(spentKey(from, day));
  if (spent + amt > limits.dailyLimit) {
    throw new ContractError(
      "ECNY_DAILY_LIMIT_EXCEEDED",
      `${amt} fen would bring today's payments to ${spent + amt} fen, over the daily limit of ${limits.dailyLimit} fen`,
    );
  }
  const left = await debitCredit(e, from, to, amt);
  e.setAmount(spentKey(from, day), spent + amt);
  return left;
}

/** Moves `amt` if `from` holds it, with the Transfer (and LargeTransaction) events; returns what `from` keeps. */
async function debitCredit(e: ContractContext, from: Address, to: Address, amt: bigint): Promise<bigint> {
  const fromBalance = await e.getAmount(balanceKey(from));
  if (fromBalance < amt) {
    throw new ContractError(
      "ECNY_INSUFFICIENT_BALANCE",
      `balance ${fromBalance} fen is less than ${amt} fen`,
      {
        balance: fromBalance.toString(),
      },
    );
  }
  e.setAmount(balanceKey(from), fromBalance - amt);
  e.setAmount(balanceKey(to), (await e.getAmount(balanceKey(to))) + amt);
  e.emit("Transfer", [from, to, amt], [from, to]);
  if (amt >= e.env.genesis.ecny.largeTxThreshold) e.emit("LargeTransaction", [from, to, amt], [from, to]);
  return fromBalance - amt;
}

/**
 * The digital-RMB (e-CNY) ledger, amounts in fen. The operator issues on recharge, once per
 * recharge id; members transfer within their wallet tier's single and daily limits; money goes
 * only to members and contract instances (ECNY_RECIPIENT_NOT_MEMBER otherwise); the
 * regulator freezes and unfreezes accounts; a transfer at or above the genesis threshold also
 * emits LargeTransaction.
 */
export const ecnyContract: SystemContract = {
  name: ECNY,
  methods: {
    /** issue(to, amount, rechargeId): operator only; a repeated recharge id is refused. */
    issue: async (ctx, args) => {
      const W = "ecny.issue";
      await requireRole(ctx, "operator", "issuing e-CNY");
      const to = address(args[0], W, "to");
      const amt = amount(args[1], W);
      const rechargeId = parseArgs(W, () =>
        readString(args[2], fieldAt(W, "rechargeId"), { max: 64, pattern: RECHARGE_ID_RE }),
      );
      const prior = await ctx.get(rechargeKey(rechargeId));
      if (prior !== undefined) {
        throw new ContractError(
          "ECNY_DUPLICATE_RECHARGE",
          `recharge ${rechargeId} was already issued in tx 0x${toHex(prior)}`,
          {
            rechargeId,
          },
        );
      }
      await requireAccount(ctx, to);
      await requireNotFrozen(ctx, to, "receiving");
      const balance = (await ctx.getAmount(balanceKey(to))) + amt;
      ctx.setAmount(balanceKey(to), balance);
      ctx.setAmount(SUPPLY, (await ctx.getAmount(SUPPLY)) + amt);
      ctx.set(rechargeKey(rechargeId), ctx.env.txHash);
      ctx.emit("Issued", [to, amt, rechargeId], [to]);
      return [balance];
    },

    /** transfer(to, amount) from the sender, within its tier's limits. */
    transfer: async (ctx, args) => {
      const W = "ecny.transfer";
      const from = ctx.env.sender;
      const to = address(args[0], W, "to");
      const amt = amount(args[1], W);
      if (to === from) throw new ContractError("INVALID_ARGUMENTS", `${W}: cannot transfer to oneself`);
      return [await payFromWallet(ctx, from, to, amt)];
    },

    /** freeze(account, reason): regulator only. */
    freeze: async (ctx, args) => {
      const W = "ecny.freeze";
      await requireRole(ctx, "regulator", "freezing an account");
      const target = address(args[0], W, "account");
      const reason = parseArgs(W, () => readString(args[1], fieldAt(W, "reason"), { max: 256 }));
      if (reason.length === 0) throw new ContractError("INVALID_ARGUMENTS", `${W}: a freeze needs a reason`);
      if ((await frozenReason(ctx, target)) !== undefined) {
        throw new ContractError("ECNY_ALREADY_FROZEN", `${target} is already frozen`);
      }
      ctx.set(frozenKey(target), encode([reason, BigInt(ctx.env.height)]));
      ctx.emit("Frozen", [target, reason], [target]);
      return null;
    },

    /** unfreeze(account): regulator only. */
    unfreeze: async (ctx, args) => {
      const W = "ecny.unfreeze";
      await requireRole(ctx, "regulator", "unfreezing an account");
      const target = address(args[0], W, "account");
      if ((await frozenReason(ctx, target)) === undefined) {
        throw new ContractError("ECNY_NOT_FROZEN", `${target} is not frozen`);
      }
      ctx.delete(frozenKey(target));
      ctx.emit("Unfrozen", [target], [target]);
      return null;
    },
  },
  queries: {
    balance: async (ctx, args) => {
      const a = address(args[0], "ecny.balance", "account");
      return {
        address: a,
        balance: await ctx.getAmount(balanceKey(a)),
        frozen: (await frozenReason(ctx, a)) ?? null,
      };
    },
    supply: async (ctx) => ({ supply: await ctx.getAmount(SUPPLY) }),
  },
};
