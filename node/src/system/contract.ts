import { decode, encode, fieldAt, readArray } from "@custos/codec";
import type { Address } from "@custos/crypto";
import type { ContractEvent, Genesis } from "@custos/types";
import { CustosError, isCustosError } from "@custos/utils";
import { stateKey } from "../state/keys.js";
import type { Overlay, StateReader } from "../state/overlay.js";

/** A business-rule refusal: the tx fails with this code in its receipt; nothing it wrote stays. */
export class ContractError extends CustosError {
  constructor(code: string, message: string, meta: Record<string, unknown> = {}) {
    super(code, message, meta);
    this.name = "ContractError";
  }
}

export interface CallEnv {
  height: number;
  /** Block timestamp (ms). */
  timestamp: number;
  txHash: Uint8Array;
  sender: Address;
  value: bigint;
  genesis: Genesis;
  /** Runs a VM contract's init when templates.instantiate creates an instance (set by the executor). */
  initContract?: (ctx: ContractContext, address: Address, code: string, params: unknown) => Promise<void>;
}

/**
 * Deterministic gas for system contracts: a base charge, reads, writes and bytes written. The
 * same tx against the same state costs the same on every node.
 */
export const GAS = { base: 1_000n, read: 200n, write: 1_000n, byte: 10n } as const;

/** What a contract method sees: its own key space, the call's environment, and events. */
export class ContractContext {
  private readonly meter: { gas: bigint; events: ContractEvent[] };

  constructor(
    readonly contract: string,
    readonly state: Overlay | StateReader,
    readonly env: CallEnv,
    readonly readOnly = false,
    meter?: { gas: bigint; events: ContractEvent[] },
  ) {
    this.meter = meter ?? { gas: GAS.base, events: [] };
  }

  get gasUsed(): bigint {
    return this.meter.gas;
  }

  set gasUsed(v: bigint) {
    this.meter.gas = v;
  }

  get events(): ContractEvent[] {
    return this.meter.events;
  }

  /** The same call acting on another system contract's key space (gas and events are shared). */
  as(contract: string): ContractContext {
    return new ContractContext(contract, this.state, this.env, this.readOnly, this.meter);
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.gasUsed += GAS.read;
    return this.state.get(stateKey(this.contract, key));
  }

  set(key: string, value: Uint8Array): void {
    this.writable().set(stateKey(this.contract, key), value);
    this.gasUsed += GAS.write + GAS.byte * BigInt(value.byteLength);
  }

  delete(key: string): void {
    this.writable().delete(stateKey(this.contract, key));
    this.gasUsed += GAS.write;
  }

  /** Reads another contract's entry (system contracts read the member registry this way). */
  async getOf(contract: string, key: string): Promise<Uint8Array | undefined> {
    this.gasUsed += GAS.read;
    return this.state.get(stateKey(contract, key));
  }

  async getAmount(key: string): Promise<bigint> {
    const raw = await this.get(key);
    return raw === undefined ? 0n : (decode(raw, "Amount", 16) as bigint);
  }

  setAmount(key: string, amount: bigint): void {
    if (amount === 0n) this.delete(key);
    else this.set(key, encode(amount));
  }

  /** An event about `topics` too (addresses, `kind:id`): each extends those subjects' audit chains. */
  emit(name: string, data: unknown, topics: string[] = []): void {
    this.events.push({ emitter: this.contract, name, data: encode(data), topics, heads: [] });
  }

  writable(): Overlay {
    if (this.readOnly) throw new ContractError("READ_ONLY", "a query cannot write state");
    return this.state as Overlay;
  }
}

export type Method = (ctx: ContractContext, args: unknown[]) => Promise<unknown>;

export interface SystemContract {
  readonly name: string;
  /** Methods a transaction may call. */
  readonly methods: Readonly<Record<string, Method>>;
  /** Read-only methods for `custos_call`. */
  readonly queries: Readonly<Record<string, Method>>;
}

/** Decodes a call's msgpack argument array; a malformed one is INVALID_ARGUMENTS. */
export function decodeArgs(bytes: Uint8Array, where: string): unknown[] {
  try {
    if (bytes.byteLength === 0) return [];
    return readArray(decode(bytes, where, 64 * 1024), fieldAt(where, "args"));
  } catch (err) {
    throw invalidArguments(err, where);
  }
}

export function invalidArguments(err: unknown, where: string): ContractError {
  if (isCustosError(err) && err.code.startsWith("DECODE_"))
    return new ContractError("INVALID_ARGUMENTS", err.message);
  return new ContractError(
    "INVALID_ARGUMENTS",
    `${where}: ${err instanceof Error ? err.message : String(err)}`,
  );
}

/** Runs `read` over `args`, turning a DecodeError into INVALID_ARGUMENTS. */
export function parseArgs<T>(where: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    throw invalidArguments(err, where);
  }
}
