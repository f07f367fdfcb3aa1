import { beforeAll, describe, expect, it } from "vitest";
import { type CallEnv, type CallRequest, VM_LIMITS, VmSession } from "../../src/index.js";
import { MemState } from "../memState.js";

const SELF = `0x${"c".repeat(40)}`;
const ALICE = `0x${"a".repeat(40)}`;
const env: CallEnv = {
  caller: ALICE,
  self: SELF,
  height: 7,
  time: 1_700_000_000_000,
  txHash: `0x${"0".repeat(64)}`,
  value: 0n,
};

const COUNTER = `
const { storage, emit, revert, env } = custos;
export function inc(by) {
  const n = BigInt(storage.get("n") ?? "0") + BigInt(by);
  storage.set("n", n.toString());
  emit("Inc", { by, n, caller: env.caller });
  return n;
}
export function get() { return BigInt(storage.get("n") ?? "0"); }
export function failAfterWrite() { storage.set("n", "999"); revert("NOPE", "changed my mind"); }
export function swallowRevert() { try { revert("HIDDEN", "caught"); } catch (e) {} return 1; }
export function claimVmFault() { revert("VM_UNAVAILABLE", "not really"); }
export function loop() { for (;;) {} }
export function recurse() { const f = (n) => f(n + 1) + 1; return f(0); }
export function bomb() { const a = []; for (;;) a.push({ n: a.length, s: "s" + a.length }); }
export function ropeBomb() { const a = []; for (;;) a.push("x".repeat(1 << 20) + a.length); }
export function bigEvent() { emit("Big", "x".repeat(100000)); }
export function ambient() {
  return [typeof Date, typeof Math.random, typeof eval, typeof WeakRef, typeof globalThis.setTimeout];
}
export function tryEval() { return Function("return 1")(); }
export function pay(to, amount) { custos.transfer(to, BigInt(amount)); return custos.balanceOf(env.self); }
export function scan(p) { storage.set(p + "b", "2"); storage.delete(p + "a"); return storage.scan(p, { limit: 10 }); }
`;

let session: VmSession;
beforeAll(async () => {
  session = await VmSession.open();
});

async function call(state: MemState, method: string, args: unknown[] = [], extra: Partial<CallRequest> = {}) {
  return session.call({ code: COUNTER, method, args, env, state, ...extra });
}

describe("VmSession", () => {
  it("runs a method, returns bigint output, writes and events", async () => {
    const state = new MemState();
    state.kv.set("n", "41");
    const r = await call(state, "inc", [1]);
    expect(r.error).toBeNull();
    expect(r.output).toBe(42n);
    expect([...r.writes]).toEqual([["n", "42"]]);
    expect(r.events).toEqual([{ name: "Inc", data: { by: 1, n: 42n, caller: ALICE }, topics: [] }]);
    expect(r.gasUsed).toBeGreaterThan(0n);
  });

  it("charges the same gas whatever ran before in the session", async () => {
    const a = await call(new MemState(), "inc", [5]);
    for (let i = 0; i < 4; i++) await call(new MemState(), i % 2 ? "bomb" : "loop");
    const b = await call(new MemState(), "inc", [5]);
    expect(b.gasUsed).toBe(a.gasUsed);
  });

  it("a revert discards the call's writes and events, even when the contract catches it", async () => {
    const r = await call(new MemState(), "failAfterWrite");
    expect(r.ok).toBe(false);
    expect(r.error).toEqual({ code: "NOPE", message: "changed my mind" });
    expect(r.writes.size).toBe(0);
    const s = await call(new MemState(), "swallowRevert");
    expect(s.ok).toBe(false);
    expect(s.error?.code).toBe("HIDDEN");
    // the VM's own codes are not a contract's to claim: VM_UNAVAILABLE would fail blocks on every node
    const v = await call(new MemState(), "claimVmFault");
    expect(v.error?.code).toBe("CONTRACT_REVERTED");
  });

  it("stops an infinite loop, deep recursion and a memory bomb with their own codes", async () => {
    const loop = await call(new MemState(), "loop");
    expect(loop.error?.code).toBe("OUT_OF_GAS");
    expect(loop.gasUsed).toBe(VM_LIMITS.gasPerCall);
    expect((await call(new MemState(), "recurse")).error?.code).toBe("STACK_OVERFLOW");
    expect((await call(new MemState(), "bomb")).error?.code).toBe("OUT_OF_MEMORY");
    // a rope-building bomb that allocates little but makes the engine copy a lot pays for it
    expect((await call(new MemState(), "ropeBomb")).error?.code).toBe("OUT_OF_GAS");
    const big = await call(new MemState(), "bigEvent");
    expect(big.error?.code).toBe("EVENT_TOO_LARGE");
    expect(big.events).toEqual([]);
    // the session still works afterwards
    expect((await call(new MemState(), "get")).output).toBe(0n);
  });

  it("offers no clock, randomness, eval, weak references or timers", async () => {
    expect((await call(new MemState(), "ambient")).output).toEqual([
      "undefined",
      "undefined",
      "undefined",
      "undefined",
      "undefined",
    ]);
    const r = await call(new MemState(), "tryEval");
    expect(r.ok).toBe(false);
    expect(r.error?.code).toBe("CONTRACT_EXCEPTION");
  });

  it("the same call gives the same result and gas every time (bigint values, host calls)", async () => {
    const state = new MemState();
    state.balances.set(SELF, 1_000_000n);
    const runs = [];
    for (let i = 0; i < 5; i++) runs.push(await call(state, "pay", [ALICE, 10]));
    expect(runs.map((r) => r.output)).toEqual([999_990n, 999_990n, 999_990n, 999_990n, 999_990n]);
    expect(new Set(runs.map((r) => r.gasUsed)).size).toBe(1);
  });

  it("module globals do not carry from one call to the next", async () => {
    const code = "let calls = 0; export function bump() { calls += 1; return calls; }";
    const run = async () =>
      (await session.call({ code, method: "bump", args: [], env, state: new MemState() })).output;
    expect([await run(), await run(), await run()]).toEqual([1, 1, 1]);
  });

  it("deep nesting stops at QuickJS's own stack check, cold or warm, never at the host's", async () => {
    const code = `export function parse(n) { return JSON.parse("[".repeat(n) + "]".repeat(n)) ? 1 : 0; }
export function str(n) { let a = []; for (let i = 0; i < n; i++) a = [a]; return JSON.stringify(a).length; }`;
    for (const method of ["parse", "str"]) {
      const codes = new Set<string | undefined>();
      for (let i = 0; i < 50; i++) {
        codes.add(
          (await session.call({ code, method, args: [20_000], env, state: new MemState() })).error?.code,
        );
      }
      expect([...codes]).toEqual(["STACK_OVERFLOW"]);
    }
  });

  it("values a contract hands back are checked by the VM, in its own words", async () => {
    const code = `export function fn() { return () => 1; }
export function deep() { let a = 1; for (let i = 0; i < 40; i++) a = [a]; return a; }
export function deepEvent() { let a = 1; for (let i = 0; i < 40; i++) a = [a]; custos.emit("E", a); }
export function fnEvent() { custos.emit("E", () => 1); return "ok"; }
export function echo(x) { return x; }
const padded = "0".repeat(3);
export function top() { return padded; }`;
    const call = (method: string, args: unknown[] = []) =>
      session.call({ code, method, args, env, state: new MemState() });
    expect((await call("fn")).output).toBeNull();
    expect((await call("deep")).error?.code).toBe("OUTPUT_INVALID");
    expect((await call("deepEvent")).error?.code).toBe("EVENT_INVALID");
    const fnEvent = await call("fnEvent");
    expect(fnEvent.events).toEqual([{ name: "E", data: null, topics: [] }]);
    expect((await call("echo", [Number.POSITIVE_INFINITY])).error?.code).toBe("INVALID_ARGUMENTS");
    expect((await call("echo", [42])).output).toBe(42); // the engine was not thrown away
    expect((await call("top")).output).toBe("000"); // metered built-ins work at load time
  });

  it("a query cannot write", async () => {
    const r = await call(new MemState(), "inc", [1], { readOnly: true });
    expect(r.error?.code).toBe("READ_ONLY");
  });

  it("unknown methods, bad modules and missing balances fail clearly", async () => {
    expect((await call(new MemState(), "nope")).error?.code).toBe("METHOD_NOT_FOUND");
    const load = async (code: string) =>
      (await session.call({ code, method: "x", args: [], env, state: new MemState() })).error?.code;
    expect(await load("export const = ;")).toBe("CONTRACT_INVALID");
    expect(await load("custos.storage.set('a', 'b'); export function x() {}")).toBe("CONTRACT_INVALID");
    expect(await load("for (;;) {} export function x() {}")).toBe("OUT_OF_GAS");
    const state = new MemState();
    state.balances.set(SELF, 100n);
    expect((await call(state, "pay", [ALICE, 101])).error?.code).toBe("CONTRACT_INSUFFICIENT_BALANCE");
    const ok = await call(state, "pay", [ALICE, 60]);
    expect(ok.output).toBe(40n);
    expect(ok.transfers).toEqual([{ to: ALICE, amount: 60n }]);
  });

  it("a prefix scan sees the call's own writes and deletes", async () => {
    const state = new MemState();
    state.kv.set("p:a", "1");
    state.kv.set("p:c", "3");
    state.kv.set("q:a", "9");
    expect((await call(state, "scan", ["p:"])).output).toEqual([
      ["p:b", "2"],
      ["p:c", "3"],
    ]);
  });

  it("memberOf reads the member registry: name and roles, null for a non-member, metered by size", async () => {
    const code = `export function who(a) { return custos.memberOf(a); }
export function isRegulator(a) { const m = custos.memberOf(a); return m !== null && m.roles.includes("regulator"); }
export function tamper(a) { const m = custos.memberOf(a); m.roles.push("regulator"); return custos.memberOf(a).roles; }`;
    const state = new MemState();
    state.members.set(ALICE, { name: "city-regulator", roles: ["regulator", "auditor"] });
    const run = (method: string, a: string, readOnly = false) =>
      session.call({ code, method, args: [a], env, state, readOnly });
    const alice = await run("who", ALICE);
    expect(alice.output).toEqual({ name: "city-regulator", roles: ["regulator", "auditor"] });
    expect((await run("who", SELF)).output).toBeNull();
    expect((await run("isRegulator", ALICE, true)).output).toBe(true); // a query may read it
    expect((await run("isRegulator", SELF)).output).toBe(false);
    // each answer is a fresh copy: a contract cannot change what the registry says
    expect((await run("tamper", ALICE)).output).toEqual(["regulator", "auditor"]);
    // gas: the same answer costs the same; a longer answer costs its bytes more
    expect((await run("who", ALICE)).gasUsed).toBe(alice.gasUsed);
    state.members.set(ALICE, {
      name: "city-regulator-with-a-much-longer-name",
      roles: ["regulator", "auditor"],
    });
    const longer = await run("who", ALICE);
    expect(longer.gasUsed - alice.gasUsed).toBe(BigInt("-with-a-much-longer-name".length));
    // a malformed address is the contract's fault, with the VM's code
    const bad = await run("who", "0xABC");
    expect(bad.error?.code).toBe("INVALID_ADDRESS");
  });

  it("gas is metered by the interpreter: more work costs more", async () => {
    const code = "export function work(n) { let s = 0; for (let i = 0; i < n; i++) s += i; return s; }";
    const g = async (n: number) =>
      (await session.call({ code, method: "work", args: [n], env, state: new MemState() })).gasUsed;
    expect(await g(1_000_000)).toBeGreaterThan(await g(10));
    expect(await g(1_000_000)).toBe(await g(1_000_000));
  });
});
