import { encode } from "@custos/codec";
import type { Address } from "@custos/crypto";
import { type Genesis, RECEIPT_VERSION, type Receipt, type SignedTx } from "@custos/types";
import { isCustosError, type Logger } from "@custos/utils";
import { VmSession } from "@custos/vm";
import { Overlay, type StateReader, type WriteSet } from "../state/overlay.js";
import { complaintsContract } from "../system/complaints.js";
import {
  type CallEnv,
  ContractContext,
  ContractError,
  decodeArgs,
  GAS,
  type SystemContract,
} from "../system/contract.js";
import { ecnyContract, payFromWallet } from "../system/ecny.js";
import { governanceContract } from "../system/governance.js";
import { membersContract, readMember } from "../system/members.js";
import { readCodeUnmetered, readInstance, templatesContract } from "../system/templates.js";
import { validatorsContract } from "../system/validators.js";
import { chainEvents } from "./auditChains.js";
import { senderAddress } from "./senders.js";
import { runContract } from "./vmCall.js";

const SYSTEM_CONTRACTS = [
  membersContract,
  ecnyContract,
  governanceContract,
  templatesContract,
  validatorsContract,
  complaintsContract,
];
/** Methods a transaction cannot call on a VM contract: init runs once, at instantiation. */
const RESERVED_METHOD = /^(init$|_)/;

export interface BlockEnv {
  height: number;
  timestamp: number;
}

export interface BlockResult {
  receipts: Receipt[];
  writes: WriteSet;
}

/**
 * Runs a block's transactions in order against an overlay of the state. Each tx runs on its own
 * overlay: success merges it into the block's, failure drops it and the receipt carries the
 * error's stable code. Deterministic: the same block on the same state gives the same receipts
 * and writes on every node.
 */
export class Executor {
  private readonly contracts = new Map<string, SystemContract>();
  /** Contract engines by code, shared by blocks and queries (every call starts from a snapshot). */
  private session: Promise<VmSession> | undefined;
  /** Contract code by code hash: immutable once stored. */
  private readonly codeCache = new Map<string, string>();

  constructor(
    private readonly genesis: Genesis,
    private readonly log: Logger,
    contracts: SystemContract[] = SYSTEM_CONTRACTS,
  ) {
    for (const c of contracts) this.contracts.set(c.name, c);
  }

  async executeBlock(txs: readonly SignedTx[], env: BlockEnv, base: StateReader): Promise<BlockResult> {
    const block = new Overlay(base);
    const receipts: Receipt[] = [];
    for (const stx of txs) receipts.push(await this.executeTx(stx, env, block));
    return { receipts, writes: block.writes };
  }

  private vm(): Promise<VmSession> {
    this.session ??= VmSession.open();
    return this.session;
  }

  private async code(ctx: ContractContext, codeHash: string): Promise<string> {
    // one read's gas whether this node had the code cached (a query, an earlier block) or not
    ctx.gasUsed += GAS.read;
    let code = this.codeCache.get(codeHash);
    if (code === undefined) {
      code = await readCodeUnmetered(ctx.state, codeHash);
      if (this.codeCache.size >= 256) this.codeCache.delete(this.codeCache.keys().next().value as string);
      this.codeCache.set(codeHash, code);
    }
    return code;
  }

  /** Checks a call to a VM contract and runs it; throws the contract's error. */
  private async callContract(
    ctx: ContractContext,
    method: string,
    argBytes: Uint8Array,
    value: bigint,
    readOnly: boolean,
  ): Promise<unknown> {
    const address = ctx.contract as Address;
    const instance = await readInstance(ctx, address);
    if (instance === undefined) throw new ContractError("CONTRACT_NOT_FOUND", `no contract at ${address}`);
    if (instance.status === "frozen") {
      throw new ContractError(
        "CONTRACT_FROZEN",
        `contract ${address} is frozen by governance: ${instance.frozenReason ?? "no reason given"}`,
      );
    }
    if (RESERVED_METHOD.test(method)) {
      throw new ContractError("METHOD_NOT_FOUND", `${method} cannot be called on a contract (reserved)`);
    }
    const args = decodeArgs(argBytes, `${address}.${method}`);
    if (value > 0n) await payFromWallet(ctx, ctx.env.sender, address, value);
    const code = await this.code(ctx, instance.codeHash);
    const r = await runContract(await this.vm(), ctx, address, code, method, args, value, readOnly);
    return r.output;
  }

  private async executeTx(stx: SignedTx, env: BlockEnv, block: Overlay): Promise<Receipt> {
    const { tx } = stx;
    const txOverlay = new Overlay(block);
    const callEnv: CallEnv = {
      height: env.height,
      timestamp: env.timestamp,
      txHash: stx.hash,
      sender: senderAddress(tx.sender),
      value: tx.value,
      genesis: this.genesis,
      initContract: async (c, address, code, params) => {
        try {
          await runContract(await this.vm(), c.as(address), address, code, "init", [params], 0n);
        } catch (err) {
          // A contract without init needs none.
          if ((err as { code?: string }).code !== "METHOD_NOT_FOUND") throw err;
        }
      },
    };
    const ctx = new ContractContext(tx.to, txOverlay, callEnv);
    try {
      if ((await readMember(block, callEnv.sender)) === undefined) {
        throw new ContractError("TX_SENDER_NOT_MEMBER", `${callEnv.sender} is not a member of this chain`);
      }
      if (tx.to.startsWith("0x")) {
        const output = await this.callContract(ctx, tx.method, tx.args, tx.value, false);
        await chainEvents(ctx.events, stx.hash, txOverlay);
        txOverlay.mergeInto(block);
        return this.receipt(stx, true, ctx, encode(output ?? null), null);
      }
      const method = this.method(tx.to, tx.method, "methods");
      if (tx.value !== 0n) {
        throw new ContractError("VALUE_NOT_ACCEPTED", `${tx.to}.${tx.method} takes no attached value`);
      }
      const output = await method(ctx, decodeArgs(tx.args, `${tx.to}.${tx.method}`));
      await chainEvents(ctx.events, stx.hash, txOverlay);
      txOverlay.mergeInto(block);
      return this.receipt(stx, true, ctx, encode(output ?? null), null);
    } catch (err) {
      if (isCustosError(err, "VM_UNAVAILABLE")) throw err; // a local fault: no receipt this node alone would write
      if (!isCustosError(err)) {
        this.log.error("system contract threw", { to: tx.to, method: tx.method, error: String(err) });
      }
      return this.receipt(stx, false, ctx, new Uint8Array(), err);
    }
  }

  /** A read-only call against `state`; throws the contract's error. */
  async query(
    state: StateReader,
    to: string,
    method: string,
    args: Uint8Array,
    env: BlockEnv,
  ): Promise<unknown> {
    const ctx = new ContractContext(
      to,
      state,
      {
        height: env.height,
        timestamp: env.timestamp,
        txHash: new Uint8Array(32),
        sender: "0x0000000000000000000000000000000000000000",
        value: 0n,
        genesis: this.genesis,
      },
      true,
    );
    if (to.startsWith("0x")) return this.callContract(ctx, method, args, 0n, true);
    const fn = this.method(to, method, "queries");
    return fn(ctx, decodeArgs(args, `${to}.${method}`));
  }

  private method(to: string, method: string, kind: "methods" | "queries") {
    const contract = this.contracts.get(to);
    if (contract === undefined) throw new ContractError("CONTRACT_NOT_FOUND", `no contract named ${to}`);
    const fn = Object.hasOwn(contract[kind], method) ? contract[kind][method] : undefined;
    if (fn === undefined) {
      const known = Object.keys(contract[kind]).join(", ") || "none";
      throw new ContractError(
        "METHOD_NOT_FOUND",
        `${to} has no ${kind === "queries" ? "query" : "method"} ${method} (${known})`,
      );
    }
    return fn;
  }

  private receipt(
    stx: SignedTx,
    success: boolean,
    ctx: ContractContext,
    output: Uint8Array,
    err: unknown,
  ): Receipt {
    const code = isCustosError(err) ? (err as { code: string }).code : "EXECUTION_FAILED";
    const message =
      err instanceof Error ? err.message.slice(0, 1024) : err === null ? null : String(err).slice(0, 1024);
    return {
      version: RECEIPT_VERSION,
      txHash: stx.hash,
      success,
      gasUsed: ctx.gasUsed,
      output,
      events: success ? ctx.events : [],
      errorCode: success ? null : /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : "EXECUTION_FAILED",
      errorMessage: success ? null : message,
    };
  }
}
