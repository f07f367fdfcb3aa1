import type { ChainMember, ContractState } from "../src/index.js";

/** A committed state in memory, for tests. */
export class MemState implements ContractState {
  readonly kv = new Map<string, string>();
  readonly balances = new Map<string, bigint>();
  readonly members = new Map<string, ChainMember>();
  get(key: string) {
    return this.kv.get(key);
  }
  scan(prefix: string, start: string, limit: number): Array<[string, string]> {
    return [...this.kv.entries()]
      .filter(([k]) => k.startsWith(prefix) && k >= start)
      .sort((a, b) => (a[0] < b[0] ? -1 : 1))
      .slice(0, limit);
  }
  balanceOf(a: string) {
    return this.balances.get(a) ?? 0n;
  }
  memberOf(a: string) {
    return this.members.get(a);
  }
}
