import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { ADDRESS_RE } from "@custos/crypto";
import { MAX_TOPICS, SUBJECT_RE } from "@custos/types";
import variantModule from "@jitl/quickjs-wasmfile-release-sync";
import {
  DefaultIntrinsics,
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSSyncVariant,
  type QuickJSWASMModule,
} from "quickjs-emscripten-core";

/** The package's default export is the sync release variant (its .d.ts types it loosely). */
const variantBase = variantModule as unknown as QuickJSSyncVariant;
/** Node's WebAssembly global; tsconfig's lib (ES2023, no DOM) does not declare it. */
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Memory: unknown;
};

import { GAS, KEY_RE, REVERT_CODE_RE, VM_LIMITS } from "./gas.js";
import { PRELUDE } from "./prelude.js";
import { decodeContractValue, encodeValue, MAX_VALUE_DEPTH } from "./value.js";

/**
 * The engine build is part of the consensus rules: the same bytecode interpreter must run on
 * every validator, so the package versions are pinned exactly and custos_status reports them.
 */
export const ENGINE = {
  name: "quickjs",
  variant: "@jitl/quickjs-wasmfile-release-sync",
  version: "0.32.0",
} as const;

/** What a call sees of the chain around it. */
export interface CallEnv {
  /** The sender's address (0x + 40 hex). */
  caller: string;
  /** The contract's own address. */
  self: string;
  height: number;
  /** Block timestamp, ms since the epoch. */
  time: number;
  /** 0x hex of the transaction's hash (zeros for a query). */
  txHash: string;
  /** e-CNY attached to the call, in fen (already credited to the contract). */
  value: bigint;
}

/**
 * The committed state a contract reads, synchronously (the node serves it from its cache and
 * LevelDB's getSync, so nothing inside a call waits on I/O and nothing re-runs).
 */
export interface ContractState {
  get(key: string): string | undefined;
  /** Entries whose key starts with `prefix` and is >= `start`, ascending, at most `limit`. */
  scan(prefix: string, start: string, limit: number): Array<[string, string]>;
  /** e-CNY balance in fen. */
  balanceOf(address: string): bigint;
  /** The chain's member registry: a member's name and roles, or undefined for a non-member. */
  memberOf(address: string): ChainMember | undefined;
}

/** What a contract learns about a member of the chain (members.ts in the node keeps the rest). */
export interface ChainMember {
  name: string;
  roles: string[];
}

export interface CallRequest {
  code: string;
  method: string;
  args: readonly unknown[];
  env: CallEnv;
  state: ContractState;
  readOnly?: boolean;
  gasLimit?: bigint;
}

export interface VmEvent {
  name: string;
  data: unknown;
  /** What the event is about (addresses, `card:12`): each extends that subject's audit chain. */
  topics: string[];
}

export interface VmTransfer {
  to: string;
  amount: bigint;
}

export interface CallResult {
  ok: boolean;
  output: unknown;
  gasUsed: bigint;
  /** Storage writes in the order of first write: key -> value, null deletes. Empty unless ok. */
  writes: Map<string, string | null>;
  /** e-CNY the contract paid out of its balance. Empty unless ok. */
  transfers: VmTransfer[];
  events: VmEvent[];
  error: { code: string; message: string } | null;
}

/** Failures that charge the whole gas limit: where exactly they stop is not worth agreeing on. */
const RESOURCE_FAULTS = new Set(["OUT_OF_GAS", "OUT_OF_MEMORY", "STACK_OVERFLOW"]);

class Fault extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const Op = {
  get: 1,
  has: 2,
  set: 3,
  delete: 4,
  scan: 5,
  balanceOf: 6,
  transfer: 7,
  emit: 8,
  revert: 9,
  noMethod: 10,
  asyncMethod: 11,
  builtin: 12,
  memberOf: 13,
} as const;

const EVENT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_:.]{0,63}$/;
const utf8Length = (s: string) => Buffer.byteLength(s, "utf8");

let compiled: object | undefined;
function compiledEngine(): object {
  if (compiled === undefined) {
    const wasm = createRequire(import.meta.url).resolve(`${ENGINE.variant}/wasm`);
    compiled = new WebAssembly.Module(readFileSync(wasm));
  }
  return compiled;
}

/** 64 KiB pages: 16 MiB to start (what the build expects), 256 MiB at most. */
const MEMORY_PAGES = { initial: 256, maximum: 4096 };

/**
 * One contract's code, loaded in its own WebAssembly instance of QuickJS: runtime, context,
 * prelude and module are set up once, then the instance's memory is snapshotted. Every call
 * runs on that state and the snapshot is written back afterwards, so each call starts from the
 * same bytes: the interrupt counter, the heap, the GC state and the module's globals never carry
 * anything from one call to the next, and gas cannot depend on what ran before.
 *
 * What is restored is the memory below the highest byte in use when the snapshot was taken;
 * above it lies only space the allocator has not handed out in the snapshot's state.
 */
class ContractEngine {
  current: CallRun | undefined;
  poisoned = false;

  private constructor(
    private readonly memory: { buffer: ArrayBuffer },
    private readonly vm: QuickJSContext,
    private readonly dispatch: QuickJSHandle,
    private readonly ns: QuickJSHandle,
    private readonly snapshot: Uint8Array,
  ) {}

  static async load(code: string): Promise<ContractEngine> {
    const memory = new (WebAssembly.Memory as new (o: object) => { buffer: ArrayBuffer })(MEMORY_PAGES);
    const qjs: QuickJSWASMModule = await newQuickJSWASMModuleFromVariant(
      newVariant(variantBase, { wasmModule: compiledEngine() as never, wasmMemory: memory as never }),
    );
    const rt = qjs.newRuntime();
    rt.setMemoryLimit(VM_LIMITS.memoryBytes);
    rt.setMaxStackSize(VM_LIMITS.stackBytes);
    const vm = rt.newContext({ intrinsics: { ...DefaultIntrinsics, Date: false } });
    // Module evaluation is metered too, against the per-call limit.
    const loading = new CallRun(undefined, VM_LIMITS.gasPerCall);
    let engine: ContractEngine | undefined;
    rt.setInterruptHandler(() => (engine?.current ?? loading).onInterrupt());
    const host = vm.newFunction("host", (...a) => {
      const run = engine?.current;
      // metered built-ins may run at load time ("0".repeat(3) at top level): they charge the load
      if (run === undefined && vm.getNumber(a[0] as QuickJSHandle) === Op.builtin) return loading.host(vm, a);
      if (run === undefined) {
        loading.fault ??= new Fault(
          "CONTRACT_INVALID",
          "the custos API is available inside methods, not at load time",
        );
        throw new Error(loading.fault.message);
      }
      return run.host(vm, a);
    });
    const factory = unwrap(vm, vm.evalCode(PRELUDE, "custos:prelude", { type: "global" }), loading);
    const dispatch = unwrap(vm, vm.callFunction(factory, vm.undefined, host), loading);
    let ns: QuickJSHandle;
    try {
      ns = unwrap(vm, vm.evalCode(code, "contract.js", { type: "module" }), loading);
    } catch (err) {
      const f = err instanceof Fault ? err : new Fault("CONTRACT_INVALID", String(err));
      throw new Fault(
        f.code === "CONTRACT_EXCEPTION" || f.code === "CONTRACT_INVALID" ? "CONTRACT_INVALID" : f.code,
        `the contract does not load: ${f.message}`,
      );
    }
    if (loading.fault) throw loading.fault;
    if (vm.typeof(ns) !== "object") throw new Fault("CONTRACT_INVALID", "the contract is not an ES module");
    // quickjs-emscripten caches a few handles on first use (the global object, BigInt and the
    // constants); made during a call, they would point into memory the restore takes back.
    for (const h of [vm.global, vm.undefined, vm.null, vm.true, vm.false]) void h;
    vm.newBigInt(0n).dispose();
    const bytes = new Uint8Array(memory.buffer);
    engine = new ContractEngine(memory, vm, dispatch, ns, bytes.slice(0, inUse(bytes)));
    return engine;
  }

  run(req: CallRequest, limit: bigint): CallResult {
    const run = new CallRun(req, limit);
    const vm = this.vm;
    let argsJson: string;
    let envJson: string;
    try {
      argsJson = encodeValue(req.args);
      envJson = encodeValue(req.env);
    } catch (err) {
      // Infinity, NaN, non-string map keys, too deep: refused before the engine sees anything
      return run.failed(
        new Fault(
          "INVALID_ARGUMENTS",
          `the call's arguments cannot go to a contract: ${(err as Error).message}`,
        ),
      );
    }
    this.current = run;
    let output: unknown = null;
    try {
      const json = vm.getString(
        unwrap(
          vm,
          vm.callFunction(
            this.dispatch,
            vm.undefined,
            this.ns,
            vm.newString(req.method),
            vm.newString(argsJson),
            vm.newString(envJson),
          ),
          run,
        ),
      );
      if (run.fault) throw run.fault;
      if (utf8Length(json) > VM_LIMITS.maxOutputBytes) {
        throw new Fault("OUTPUT_TOO_LARGE", `the return value is over ${VM_LIMITS.maxOutputBytes} bytes`);
      }
      const decoded = decodeContractValue(json);
      if (decoded === undefined) {
        throw new Fault("OUTPUT_INVALID", `the return value nests deeper than ${MAX_VALUE_DEPTH} levels`);
      }
      output = decoded.value;
    } catch (err) {
      if (!(err instanceof Fault) && run.fault === undefined) {
        // A trap inside the engine (not a JS exception): this instance cannot be trusted again.
        this.poisoned = true;
      }
      return run.failed(run.fault ?? (err instanceof Fault ? err : new Fault("VM_ERROR", String(err))));
    } finally {
      this.current = undefined;
      // Handles made during the call live in the memory being rewritten: they are dropped with it.
      new Uint8Array(this.memory.buffer).set(this.snapshot);
    }
    return run.succeeded(output);
  }
}

const ZERO_CHUNK = new Uint8Array(64 * 1024);

/**
 * One past the highest non-zero byte: whole 64 KiB chunks compared natively from the top (most
 * of a fresh instance's memory is untouched zeros), then the last non-zero chunk byte by byte.
 */
function inUse(bytes: Uint8Array): number {
  let end = bytes.length;
  while (end > 0) {
    const start = Math.max(0, end - ZERO_CHUNK.length);
    if (Buffer.compare(bytes.subarray(start, end), ZERO_CHUNK.subarray(0, end - start)) !== 0) break;
    end = start;
  }
  while (end > 0 && bytes[end - 1] === 0) end--;
  return end;
}

/** A VM exception becomes a Fault with a stable code; the host's own fault takes precedence. */
function unwrap(
  vm: QuickJSContext,
  r: { error?: QuickJSHandle; value?: QuickJSHandle },
  run: CallRun,
): QuickJSHandle {
  if (r.error === undefined) return r.value as QuickJSHandle;
  const e = vm.dump(r.error) as unknown;
  const text =
    typeof e === "object" && e !== null
      ? `${(e as { name?: string }).name ?? "Error"}: ${(e as { message?: string }).message ?? ""}`
      : String(e);
  if (run.fault) throw run.fault;
  if (/out of memory/i.test(text)) throw new Fault("OUT_OF_MEMORY", "the contract ran out of memory");
  if (/stack overflow/i.test(text)) throw new Fault("STACK_OVERFLOW", "the contract's call stack overflowed");
  if (/interrupted/i.test(text)) throw new Fault("OUT_OF_GAS", "the contract ran out of gas");
  throw new Fault("CONTRACT_EXCEPTION", text.slice(0, 512));
}

/**
 * Runs contract calls. Engines are kept per code (by content) in a small LRU: loading one costs
 * ~11 ms, a call on a loaded one ~0.15 ms. Any number of callers may share a
 * session; calls themselves are synchronous once the engine is loaded.
 */
export class VmSession {
  private readonly engines = new Map<string, Promise<ContractEngine | Fault>>();

  private constructor(private readonly capacity: number) {}

  static async open(o: { engines?: number } = {}): Promise<VmSession> {
    compiledEngine();
    return new VmSession(o.engines ?? 16);
  }

  async call(req: CallRequest): Promise<CallResult> {
    const limit = req.gasLimit ?? VM_LIMITS.gasPerCall;
    const engine = await this.engine(req.code);
    if (engine instanceof Fault) return new CallRun(req, limit).failed(engine);
    const r = engine.run(req, limit);
    if (engine.poisoned) this.engines.delete(req.code);
    return r;
  }

  private engine(code: string): Promise<ContractEngine | Fault> {
    let e = this.engines.get(code);
    if (e !== undefined) {
      this.engines.delete(code);
      this.engines.set(code, e);
      return e;
    }
    e = ContractEngine.load(code).catch((err) => {
      if (err instanceof Fault) return err; // the code's own failure: the same on every node, kept
      // the host's (no memory for an instance, say): not kept, the next call tries again
      this.engines.delete(code);
      return new Fault("VM_UNAVAILABLE", `the VM could not load the contract: ${String(err)}`);
    });
    this.engines.set(code, e);
    if (this.engines.size > this.capacity) this.engines.delete(this.engines.keys().next().value as string);
    return e;
  }
}

/** The metered, overlaid state of one call. */
class CallRun {
  gas: bigint = GAS.call;
  fault: Fault | undefined;
  readonly writes = new Map<string, string | null>();
  readonly transfers: VmTransfer[] = [];
  readonly events: VmEvent[] = [];
  private paidOut = 0n;
  private readonly received = new Map<string, bigint>();

  private readonly req: CallRequest;

  /** `req` is undefined while a module loads: no host call is allowed then. */
  constructor(
    req: CallRequest | undefined,
    private readonly limit: bigint,
  ) {
    this.req = req as CallRequest;
  }

  onInterrupt(): boolean {
    this.gas += GAS.interrupt;
    if (this.gas > this.limit) {
      this.fault ??= new Fault("OUT_OF_GAS", `the call used more than its ${this.limit} gas`);
      return true;
    }
    return false;
  }

  private charge(n: bigint): void {
    this.gas += n;
    if (this.gas > this.limit) this.stop("OUT_OF_GAS", `the call used more than its ${this.limit} gas`);
  }

  /** A sticky fault: the call fails even if the contract catches the exception. */
  private stop(code: string, message: string): never {
    this.fault ??= new Fault(code, message);
    throw new Error(message);
  }

  private key(v: unknown): string {
    if (typeof v !== "string" || !KEY_RE.test(v)) {
      this.stop("INVALID_KEY", `storage keys are 1 to ${VM_LIMITS.maxKeyLength} printable ASCII characters`);
    }
    return v;
  }

  private writable(what: string): void {
    if (this.req.readOnly) this.stop("READ_ONLY", `a query cannot ${what}`);
  }

  private read(key: string): string | undefined {
    const w = this.writes.get(key);
    if (w !== undefined) return w ?? undefined;
    return this.writes.has(key) ? undefined : this.req.state.get(key);
  }

  host(vm: QuickJSContext, a: QuickJSHandle[]): QuickJSHandle | undefined {
    if (this.fault) throw new Error(this.fault.message);
    this.charge(GAS.hostCall);
    const op = vm.getNumber(a[0] as QuickJSHandle);
    const s = (i: number) => vm.getString(a[i] as QuickJSHandle);
    switch (op) {
      case Op.get:
      case Op.has: {
        const key = this.key(s(1));
        const v = this.read(key);
        this.charge(GAS.read + GAS.readByte * BigInt(key.length + (v === undefined ? 0 : utf8Length(v))));
        if (op === Op.has) return v === undefined ? vm.false : vm.true;
        return v === undefined ? vm.undefined : vm.newString(v);
      }
      case Op.set: {
        this.writable("write storage");
        const key = this.key(s(1));
        const value = s(2);
        const bytes = utf8Length(value);
        if (bytes > VM_LIMITS.maxValueBytes) {
          this.stop(
            "VALUE_TOO_LARGE",
            `a stored value is at most ${VM_LIMITS.maxValueBytes} bytes (${bytes})`,
          );
        }
        this.charge(GAS.write + GAS.writeByte * BigInt(key.length + bytes));
        this.writes.delete(key);
        this.writes.set(key, value);
        return undefined;
      }
      case Op.delete: {
        this.writable("delete storage");
        const key = this.key(s(1));
        this.charge(GAS.write);
        this.writes.delete(key);
        this.writes.set(key, null);
        return undefined;
      }
      case Op.scan:
        return vm.newString(JSON.stringify(this.scan(s(1), s(2), vm.getNumber(a[3] as QuickJSHandle))));
      case Op.balanceOf: {
        const address = this.address(s(1));
        this.charge(GAS.read);
        return vm.newBigInt(this.balanceOf(address));
      }
      case Op.memberOf: {
        const address = this.address(s(1));
        const m = this.req.state.memberOf(address);
        // only name and roles, in this order: the answer's bytes (and so its gas) are the same everywhere
        const json = m === undefined ? "null" : JSON.stringify({ name: m.name, roles: [...m.roles] });
        this.charge(GAS.member + GAS.readByte * BigInt(utf8Length(json)));
        return vm.newString(json);
      }
      case Op.transfer: {
        this.writable("transfer");
        const to = this.address(s(1));
        const amount = vm.getBigInt(a[2] as QuickJSHandle);
        this.charge(GAS.transfer);
        if (amount <= 0n) this.stop("INVALID_AMOUNT", "a transfer is at least 1 fen");
        if (to === this.req.env.self) this.stop("INVALID_ARGUMENTS", "a contract cannot pay itself");
        const available = this.balanceOf(this.req.env.self);
        if (amount > available) {
          this.stop("CONTRACT_INSUFFICIENT_BALANCE", `the contract holds ${available} fen, not ${amount}`);
        }
        this.paidOut += amount;
        this.received.set(to, (this.received.get(to) ?? 0n) + amount);
        this.transfers.push({ to, amount });
        return undefined;
      }
      case Op.emit: {
        this.writable("emit events");
        const name = s(1);
        const data = s(2);
        if (!EVENT_NAME_RE.test(name))
          this.stop("INVALID_EVENT", `event name ${JSON.stringify(name.slice(0, 80))} is not valid`);
        const bytes = utf8Length(data);
        if (bytes > VM_LIMITS.maxEventBytes) {
          this.stop(
            "EVENT_TOO_LARGE",
            `event ${name} carries ${bytes} bytes; the limit is ${VM_LIMITS.maxEventBytes}`,
          );
        }
        if (this.events.length >= VM_LIMITS.maxEvents) {
          this.stop("TOO_MANY_EVENTS", `a call emits at most ${VM_LIMITS.maxEvents} events`);
        }
        const topicsJson = s(3);
        this.charge(GAS.event + GAS.eventByte * BigInt(bytes + utf8Length(topicsJson)));
        const topics = JSON.parse(topicsJson) as string[];
        if (topics.length > MAX_TOPICS || !topics.every((t) => SUBJECT_RE.test(t)))
          this.stop(
            "INVALID_EVENT",
            `event ${name}: at most ${MAX_TOPICS} topics, each an address or kind:id (${SUBJECT_RE})`,
          );
        const decoded = decodeContractValue(data);
        if (decoded === undefined) {
          this.stop("EVENT_INVALID", `event ${name} nests deeper than ${MAX_VALUE_DEPTH} levels`);
        }
        this.events.push({ name, data: decoded.value, topics });
        return undefined;
      }
      case Op.revert: {
        const code = s(1);
        const message = s(2).slice(0, 512);
        // VM_* codes are the VM's own (VM_UNAVAILABLE means this node could not run the call and
        // fails the block locally): a contract cannot claim them
        if (!REVERT_CODE_RE.test(code) || code.startsWith("VM_"))
          this.stop("CONTRACT_REVERTED", `${code.slice(0, 64)}: ${message}`);
        this.stop(code, message || code);
        break;
      }
      case Op.builtin: {
        const units = vm.getNumber(a[1] as QuickJSHandle);
        this.charge(
          GAS.builtinUnits * BigInt(Math.ceil(Number.isFinite(units) && units > 0 ? units / 16 : 0)),
        );
        return undefined;
      }
      case Op.noMethod:
        this.stop("METHOD_NOT_FOUND", `the contract exports no function ${s(1)}`);
        break;
      case Op.asyncMethod:
        this.stop("CONTRACT_INVALID", `${s(1)} returned a promise; contract methods are synchronous`);
        break;
    }
    this.stop("VM_ERROR", `unknown host operation ${op}`);
  }

  private address(v: string): string {
    if (!ADDRESS_RE.test(v))
      this.stop("INVALID_ADDRESS", `${JSON.stringify(v.slice(0, 64))} is not an address`);
    return v;
  }

  private balanceOf(address: string): bigint {
    const base = this.req.state.balanceOf(address);
    if (address === this.req.env.self) return base - this.paidOut;
    return base + (this.received.get(address) ?? 0n);
  }

  private scan(prefix: string, start: string, limit: number): Array<[string, string]> {
    if (prefix !== "") this.key(prefix);
    if (start !== "") this.key(start);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > VM_LIMITS.maxScanEntries) {
      this.stop("INVALID_ARGUMENTS", `a scan returns 1 to ${VM_LIMITS.maxScanEntries} entries`);
    }
    const from = start > prefix ? start : prefix;
    const inRange = (k: string) => k.startsWith(prefix) && k >= from;
    let deleted = 0;
    for (const [k, v] of this.writes) if (v === null && inRange(k)) deleted++;
    const merged = new Map<string, string>();
    for (const [k, v] of this.req.state.scan(prefix, from, limit + deleted)) merged.set(k, v);
    for (const [k, v] of this.writes) {
      if (!inRange(k)) continue;
      if (v === null) merged.delete(k);
      else merged.set(k, v);
    }
    const out = [...merged.entries()]
      .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
      .slice(0, limit);
    let bytes = 0;
    for (const [k, v] of out) bytes += k.length + utf8Length(v);
    this.charge(GAS.read + GAS.scanEntry * BigInt(out.length) + GAS.readByte * BigInt(bytes));
    return out;
  }

  failed(fault: Fault): CallResult {
    const resource = RESOURCE_FAULTS.has(fault.code);
    return {
      ok: false,
      output: null,
      gasUsed: resource || this.gas > this.limit ? this.limit : this.gas,
      writes: new Map(),
      transfers: [],
      events: [],
      error: { code: fault.code, message: fault.message },
    };
  }

  succeeded(output: unknown): CallResult {
    return {
      ok: true,
      output,
      gasUsed: this.gas,
      writes: this.writes,
      transfers: this.transfers,
      events: this.events,
      error: null,
    };
  }
}
