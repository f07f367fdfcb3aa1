import { type CallResult, type ChainMember, type ContractState, VmSession } from "@custos/vm";
import { type BundledContract, bundleContract } from "./bundle.js";

export { type BundledContract, bundleContract } from "./bundle.js";

export interface HarnessCall {
  /** Sender address; defaults to the harness's `caller`. */
  caller?: string;
  /** e-CNY fen attached, moved from the caller's balance to the contract's first. */
  value?: bigint;
}

export interface HarnessReceipt {
  ok: boolean;
  output: unknown;
  gasUsed: bigint;
  events: { name: string; data: unknown }[];
  error: { code: string; message: string } | null;
}

const DEFAULT_SELF = `0x${"c0".repeat(20)}`;
const DEFAULT_CALLER = `0x${"a1".repeat(20)}`;

/**
 * Runs a contract in the same VM the chain uses (same QuickJS build, same sandbox, same gas),
 * against state kept in memory, so authors can unit-test with vitest before they submit a
 * template. Each `call` commits like a transaction (its writes and payouts stay only if it
 * succeeds); `query` runs read-only. Height and time advance as you say.
 */
export class ContractHarness implements ContractState {
  readonly storage = new Map<string, string>();
  readonly balances = new Map<string, bigint>();
  /** The chain's member registry as contracts see it (memberOf): set it with `setMember`. */
  readonly members = new Map<string, ChainMember>();
  readonly events: { name: string; data: unknown; height: number }[] = [];
  self = DEFAULT_SELF;
  caller = DEFAULT_CALLER;
  height = 1;
  time = Date.UTC(2026, 0, 1);
  private txCount = 0;

  private constructor(
    readonly contract: BundledContract,
    private readonly session: VmSession,
  ) {}

  /** Bundles a .ts or .js contract file like `custos contract build` does. */
  static async fromFile(path: string): Promise<ContractHarness> {
    return new ContractHarness(await bundleContract(path), await VmSession.open());
  }

  /** An already bundled contract source (one ES module). */
  static async fromSource(code: string): Promise<ContractHarness> {
    return new ContractHarness({ code, codeHash: "" }, await VmSession.open());
  }

  /** Runs init(params) as an instantiation does. */
  async deploy(params: unknown = null, o: HarnessCall = {}): Promise<HarnessReceipt> {
    const r = await this.run("init", [params], o, false);
    if (!r.ok && r.error?.code === "METHOD_NOT_FOUND") return { ...r, ok: true, error: null };
    return r;
  }

  call(method: string, args: unknown[] = [], o: HarnessCall = {}): Promise<HarnessReceipt> {
    return this.run(method, args, o, false);
  }

  async query(method: string, args: unknown[] = [], o: HarnessCall = {}): Promise<unknown> {
    const r = await this.run(method, args, o, true);
    if (!r.ok)
      throw Object.assign(new Error(`${r.error?.code}: ${r.error?.message}`), { code: r.error?.code });
    return r.output;
  }

  /** Moves the chain on: the next call sees a later block. */
  advance(ms: number, blocks = 1): void {
    this.time += ms;
    this.height += blocks;
  }

  balanceOf(address: string): bigint {
    return this.balances.get(address) ?? 0n;
  }

  /** Registers (or replaces) a member with its roles, as governance's member.add/roles would. */
  setMember(address: string, roles: string[], name = address.slice(0, 10)): void {
    this.members.set(address, { name, roles: [...roles] });
  }

  memberOf(address: string): ChainMember | undefined {
    return this.members.get(address);
  }

  get(key: string): string | undefined {
    return this.storage.get(key);
  }

  scan(prefix: string, start: string, limit: number): Array<[string, string]> {
    return [...this.storage.entries()]
      .filter(([k]) => k.startsWith(prefix) && k >= start)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .slice(0, limit);
  }

  private async run(
    method: string,
    args: unknown[],
    o: HarnessCall,
    readOnly: boolean,
  ): Promise<HarnessReceipt> {
    const caller = o.caller ?? this.caller;
    const value = o.value ?? 0n;
    if (value > 0n) {
      if (this.balanceOf(caller) < value) {
        return this.refuse("ECNY_INSUFFICIENT_BALANCE", `${caller} holds ${this.balanceOf(caller)} fen`);
      }
    }
    const before = new Map(this.balances);
    if (value > 0n && !readOnly) this.move(caller, this.self, value);
    const r: CallResult = await this.session.call({
      code: this.contract.code,
      method,
      args,
      env: {
        caller,
        self: this.self,
        height: this.height,
        time: this.time,
        txHash: `0x${(++this.txCount).toString(16).padStart(64, "0")}`,
        value,
      },
      state: this,
      readOnly,
    });
    if (!r.ok) {
      this.balances.clear();
      for (const [k, v] of before) this.balances.set(k, v);
    } else {
      for (const [k, v] of r.writes) {
        if (v === null) this.storage.delete(k);
        else this.storage.set(k, v);
      }
      for (const t of r.transfers) this.move(this.self, t.to, t.amount);
      for (const e of r.events) this.events.push({ ...e, height: this.height });
    }
    return { ok: r.ok, output: r.output, gasUsed: r.gasUsed, events: r.events, error: r.error };
  }

  private move(from: string, to: string, amount: bigint): void {
    this.balances.set(from, this.balanceOf(from) - amount);
    this.balances.set(to, this.balanceOf(to) + amount);
  }

  private refuse(code: string, message: string): HarnessReceipt {
    return { ok: false, output: null, gasUsed: 0n, events: [], error: { code, message } };
  }
}
