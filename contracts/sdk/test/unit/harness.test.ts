import { fileURLToPath } from "node:url";
import { beforeEach, describe, expect, it } from "vitest";
import { ContractHarness } from "../../src/harness.js";

const counter = fileURLToPath(new URL("../../examples/counter.ts", import.meta.url));
const ALICE = `0x${"a".repeat(40)}`;
const BOB = `0x${"b".repeat(40)}`;

describe("ContractHarness on the example counter", () => {
  let h: ContractHarness;
  beforeEach(async () => {
    h = await ContractHarness.fromFile(counter);
    h.caller = ALICE;
    expect((await h.deploy({ step: 2 })).ok).toBe(true);
  });

  it("bundles the TypeScript into one module with no imports and an SM3 code hash", () => {
    expect(h.contract.code).not.toMatch(/^\s*import /m);
    expect(h.contract.codeHash).toMatch(/^0x[0-9a-f]{64}$/);
  });

  it("counts per caller, emits events and scans in key order", async () => {
    expect((await h.call("increment")).output).toBe(2);
    expect((await h.call("increment", [], { caller: BOB })).output).toBe(2);
    expect((await h.call("increment")).output).toBe(4);
    expect(await h.query("countOf", [ALICE])).toBe(4);
    expect(await h.query("all")).toEqual([
      [ALICE, 4],
      [BOB, 2],
    ]);
    expect(h.events.map((e) => e.name)).toEqual(["Incremented", "Incremented", "Incremented"]);
  });

  it("attached value and payouts move e-CNY; a revert leaves balances and state alone", async () => {
    h.balances.set(BOB, 500n);
    expect((await h.call("tip", [], { caller: BOB, value: 300n })).output).toBe(300n);
    expect(h.balanceOf(h.self)).toBe(300n);
    const r = await h.call("withdraw", [100n], { caller: BOB });
    expect(r.error?.code).toBe("NOT_OWNER");
    expect(h.balanceOf(h.self)).toBe(300n);
    expect((await h.call("withdraw", [100n])).ok).toBe(true);
    expect(h.balanceOf(ALICE)).toBe(100n);
    expect((await h.call("tip", [], { caller: BOB })).error?.code).toBe("NO_VALUE");
  });

  it("a query cannot write", async () => {
    await expect(h.query("increment")).rejects.toThrow(/READ_ONLY/);
  });
});

describe("ContractHarness members", () => {
  it("memberOf and hasRole see the members a test sets, and follow role changes", async () => {
    const h = await ContractHarness.fromFile(fileURLToPath(new URL("../fixtures/roles.ts", import.meta.url)));
    await h.deploy();
    expect((await h.call("setNotice", ["closed"], { caller: ALICE })).error?.code).toBe("NOT_REGULATOR");
    h.setMember(ALICE, ["regulator"], "city-regulator");
    expect((await h.call("setNotice", ["closed"], { caller: ALICE })).ok).toBe(true);
    expect(h.storage.get("notice")).toBe("closed");
    expect(await h.query("whoIs", [ALICE])).toEqual({ name: "city-regulator", roles: ["regulator"] });
    expect(await h.query("whoIs", [BOB])).toBeNull();
    h.setMember(ALICE, ["auditor"]);
    expect((await h.call("setNotice", ["open"], { caller: ALICE })).error?.code).toBe("NOT_REGULATOR");
  });
});

describe("the example counter's version 1.1.0 (counter-v2.ts, the README's upgrade)", () => {
  it("keeps every method of counter.ts, adds decrement, and has its own code hash", async () => {
    const v1 = await ContractHarness.fromFile(counter);
    const h = await ContractHarness.fromFile(
      fileURLToPath(new URL("../../examples/counter-v2.ts", import.meta.url)),
    );
    expect(h.contract.codeHash).not.toBe(v1.contract.codeHash);
    expect(h.contract.code).not.toMatch(/^\s*import /m);
    h.caller = ALICE;
    await h.deploy({ step: 2 });
    expect((await h.call("increment")).output).toBe(2);
    expect((await h.call("decrement")).output).toBe(1);
    expect((await h.call("decrement")).output).toBe(0);
    expect((await h.call("decrement")).output).toBe(0);
    expect(await h.query("countOf", [ALICE])).toBe(0);
    expect(h.events.map((e) => e.name)).toEqual(["Incremented", "Decremented", "Decremented", "Decremented"]);
  });
});
