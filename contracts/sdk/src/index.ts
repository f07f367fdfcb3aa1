/**
 * What a contract imports. The VM installs a frozen `custos` global before it evaluates the
 * contract (vm/src/prelude.ts); this module gives it types and names. The bundler
 * (`custos contract build`) inlines the runtime half, so a deployed contract imports nothing.
 *
 *   import { storage, env, emit, revert } from "@custos/contract-sdk";
 *   export function inc(by: number): bigint { ... }
 *
 * Every exported function is a method; `init(params)` runs once when an institution
 * instantiates the template and cannot be called afterwards; names starting with `_` are private.
 * Money is bigint fen. There is no clock but `env.time` (the block's), no randomness, no I/O.
 */

/** 0x + 40 lowercase hex. */
export type Address = string;

export interface ScanOptions {
  /** First key to return (inclusive); defaults to the prefix itself. */
  start?: string;
  /** At most this many entries (1 to 256); defaults to 100. */
  limit?: number;
}

/** The contract's own key-value store. Keys are 1-256 printable ASCII characters. */
export interface Storage {
  get(key: string): string | null;
  has(key: string): boolean;
  set(key: string, value: string): void;
  delete(key: string): void;
  /** Entries whose key starts with `prefix`, in ascending key order. */
  scan(prefix: string, options?: ScanOptions): Array<[string, string]>;
  /** JSON with bigint kept (written {"$n": "..."}). */
  getJson<T = unknown>(key: string): T | null;
  setJson(key: string, value: unknown): void;
}

export interface Env {
  /** Who sent the transaction. */
  readonly caller: Address;
  /** This contract's address. */
  readonly self: Address;
  readonly height: number;
  /** The block's timestamp in ms: the same on every node. */
  readonly time: number;
  readonly txHash: string;
  /** e-CNY (fen) attached to this call, already in the contract's balance. */
  readonly value: bigint;
}

/** A member of the chain's registry, as contracts see it (system contract `members`). */
export interface Member {
  name: string;
  /** committee, regulator, operator, institution, merchant, consumer, auditor (DESIGN.md §5). */
  roles: string[];
}

export interface ContractApi {
  readonly storage: Storage;
  readonly env: Env;
  /** The e-CNY balance (fen) of any account, this contract's included. */
  balanceOf(address: Address): bigint;
  /**
   * The member registry's entry for `address` (0x + 40 lowercase hex), or null for a non-member:
   * how a contract recognises the regulator, a merchant or an institution. It reads the registry as
   * the block has it so far (a role granted by governance earlier in the block counts).
   */
  memberOf(address: Address): Member | null;
  /** Pays fen from the contract's own balance; applied only if the call succeeds. */
  transfer(to: Address, amount: bigint): void;
  /**
   * An event in the receipt, for WebSocket subscribers and auditors (at most 8 KiB of data).
   * `topics` (at most 4: member addresses, or `kind:id` names such as `card:12`) say what else it
   * is about: each topic, like the contract itself, has an audit chain that the event extends, so
   * an auditor can show a trace of that subject complete.
   */
  emit(name: string, data?: unknown, topics?: string[]): void;
  /** Fails the call with a stable code (A-Z, 0-9, _): nothing it wrote stays. */
  revert(code: string, message?: string): never;
}

/*
 * Declarations only: at run time this module is the bundler's SDK_RUNTIME (src/bundle.ts), which
 * reads the same names off the `custos` global the VM installs. Nothing here runs on the host.
 */
export declare const storage: Storage;
export declare const env: Env;
export declare const balanceOf: ContractApi["balanceOf"];
export declare const memberOf: ContractApi["memberOf"];
/** True when `address` is a member holding `role` (memberOf, then a look at its roles). */
export declare const hasRole: (address: Address, role: string) => boolean;
export declare const transfer: ContractApi["transfer"];
export declare const emit: ContractApi["emit"];
export declare const revert: ContractApi["revert"];
