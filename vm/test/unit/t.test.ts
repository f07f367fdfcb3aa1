import { it } from "vitest";
import { VmSession } from "../../src/index.js";
import { MemState } from "../memState.js";

it("time", async () => {
  const s = await VmSession.open();
  const env = {
    caller: `0x${"a".repeat(40)}`,
    self: `0x${"c".repeat(40)}`,
    height: 1,
    time: 1,
    txHash: "0x",
    value: 0n,
  };
  for (const [name, code] of [
    ["r1", 'export function f(){ return "x".repeat(1 << 20).length }'],
    [
      "r8",
      'export function f(){ const a=[]; for(let i=0;i<8;i++) a.push("x".repeat(1 << 20)); return a.length }',
    ],
    [
      "cat",
      'export function f(){ const a=[]; for(let i=0;i<8;i++) a.push("x".repeat(1 << 20)+i); return a.length }',
    ],
    ["bomb", 'export function f(){ const a = []; for (;;) a.push("x".repeat(1 << 20) + a.length); }'],
  ]) {
    const t = performance.now();
    const r = s.call({ code, method: "f", args: [], env, state: new MemState() });
    console.log(name, r.error?.code, r.output, r.gasUsed, (performance.now() - t).toFixed(1), "ms");
  }
}, 60000);
