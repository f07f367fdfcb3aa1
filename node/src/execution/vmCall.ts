import { decode, encode } from "@custos/codec";
import type { Address } from "@custos/crypto";
import { CustosError, toHex } from "@custos/utils";
import type { CallEnv, CallResult, ContractState, VmSession } from "@custos/vm";
import { stateKey } from "../state/keys.js";
import type { Overlay, StateReader } from "../state/overlay.js";
import { type ContractContext, ContractError } from "../system/contract.js";
import { balanceKeyOf, ECNY, moveFen } from "../system/ecny.js";
import { decodeMember, MEMBERS, memberKey } from "../system/members.js";

const utf8 = new TextEncoder();
const text = new TextDecoder();

/**
 * Thrown through the executor (never a receipt): the node itself could not run a contract
 * (VM_UNAVAILABLE). Recognised by its code, like every error that crosses a module.
 */
export function vmUnavailable(message: string): CustosError<"VM_UNAVAILABLE"> {
  return new CustosError("VM_UNAVAILABLE", message);
}

/** A VM contract's view of the node's state: its own key space, e-CNY balances and the member registry. */
export function contractState(state: StateReader, address: Address): ContractState {
  const prefixLength = stateKey(address, "").byteLength;
  return {
    get(key) {
      const v = state.getSync(stateKey(address, key));
      return v === undefined ? undefined : text.decode(v);
    },
    scan(prefix, start, limit) {
      return state
        .scanSync(stateKey(address, prefix), stateKey(address, start), limit)
        .map(([k, v]) => [text.decode(k.subarray(prefixLength)), text.decode(v)]);
    },
    balanceOf(a) {
      const v = state.getSync(stateKey(ECNY, balanceKeyOf(a as Address)));
      return v === undefined ? 0n : (decode(v, "Amount", 16) as bigint);
    },
    memberOf(a) {
      const v = state.getSync(stateKey(MEMBERS, memberKey(a as Address)));
      if (v === undefined) return undefined;
      const m = decodeMember(a as Address, v);
      return { name: m.name, roles: m.roles };
    },
  };
}

/**
 * Runs one method of a VM contract inside a system-contract call context: the VM works on a
 * synchronous view of `ctx`'s overlay; on success its writes, payouts and events are applied to
 * the overlay and its gas is added to the call's; on failure the error propagates and the
 * caller's overlay is dropped.
 */
export async function runContract(
  session: VmSession,
  ctx: ContractContext,
  address: Address,
  code: string,
  method: string,
  args: readonly unknown[],
  value: bigint,
  readOnly = false,
): Promise<CallResult> {
  const env: CallEnv = {
    caller: ctx.env.sender,
    self: address,
    height: ctx.env.height,
    time: ctx.env.timestamp,
    txHash: `0x${toHex(ctx.env.txHash)}`,
    value,
  };
  const r = await session.call({
    code,
    method,
    args,
    env,
    state: contractState(ctx.state, address),
    readOnly,
  });
  if (r.error?.code === "VM_UNAVAILABLE") {
    // this node could not run the VM (no memory for an instance, say): not a receipt, which other
    // nodes would not agree on, but a local fault that stops this block's execution here
    throw vmUnavailable(r.error.message);
  }
  ctx.gasUsed += r.gasUsed;
  if (!r.ok) {
    const e = r.error as { code: string; message: string };
    throw new ContractError(e.code, e.message, { gasUsed: r.gasUsed.toString() });
  }
  if (!readOnly) {
    const overlay: Overlay = ctx.writable();
    for (const [k, v] of r.writes) {
      if (v === null) overlay.delete(stateKey(address, k));
      else overlay.set(stateKey(address, k), utf8.encode(v));
    }
    for (const t of r.transfers) await moveFen(ctx, address, t.to as Address, t.amount);
    for (const ev of r.events) {
      ctx.events.push({
        emitter: address,
        name: ev.name,
        data: encode(ev.data),
        topics: ev.topics,
        heads: [],
      });
    }
  }
  return r;
}
