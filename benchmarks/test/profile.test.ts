import { describe, expect, it } from "vitest";
import { summarisePerf } from "../src/profile.js";

// `perf script` text as perf 6 prints it for node started with --perf-basic-prof
const sample = (frames: string[]) =>
  `node 4242 [001] 100.000001:    1001001 cpu-clock:ppp: \n${frames.map((f) => `\t    7f00deadbeef ${f}`).join("\n")}\n`;

describe("summarisePerf (perf script output, charged like V8 profiles)", () => {
  it("charges each sample to the innermost frame a component names, else by its innermost frame", () => {
    const text = [
      // SM2 on libuv's pool: a native frame of the addon, no JavaScript on the stack
      sample([
        "fe_mul+0x12 (/x/packages/sm2-native/build/Release/sm2native.node)",
        "uv__work_run+0x9 (/usr/bin/node)",
      ]),
      // msgpack under the audit index: the audit index's (innermost frame a component names)
      sample([
        "Builtins_LoadIC+0x1 (/usr/bin/node)",
        "JS:*pack file:///x/node_modules/msgpackr/pack.js:472:16 (/tmp/perf-4242.map)",
        "JS:*indexBlock file:///x/node/dist/audit/auditIndex.js:387:21 (/tmp/perf-4242.map)",
        "JS:^handleHttp file:///x/node/dist/rpc/server.js:228:21 (/tmp/perf-4242.map)",
      ]),
      // a system call under the WAL: consensus, and it counts as a kernel leaf
      sample([
        "finish_task_switch.isra.0+0x5 ([kernel.kallsyms])",
        "fdatasync+0x10 (/usr/lib/x86_64-linux-gnu/libc.so.6)",
        "JS:*append file:///x/node/dist/consensus/fileWal.js:38:17 (/tmp/perf-4242.map)",
      ]),
      // nothing named: by the innermost frame
      sample(["v8::internal::Scavenger::ScavengeObject+0x3 (/usr/bin/node)"]),
      sample([
        "_int_malloc+0x44 (/usr/lib/x86_64-linux-gnu/libc.so.6)",
        "start_thread+0x1 (/usr/lib/libc.so.6)",
      ]),
      sample(["do_syscall_64+0x2 ([kernel.kallsyms])"]),
      sample(["__memmove_avx_unaligned_erms+0x9 (/usr/lib/x86_64-linux-gnu/libc.so.6)"]),
      sample(["JS:^ node:internal/timers:524:25 (/tmp/perf-4242.map)"]),
    ].join("\n");
    const r = summarisePerf(text);
    expect(r.samples).toBe(8);
    expect(r.kernelLeaf).toBe(2);
    expect(Object.fromEntries(r.shares.map((s) => [s.component, s.samples]))).toEqual({
      "SM2 verify and sign": 1,
      "audit index": 1,
      "consensus (PBFT, votes, WAL)": 1,
      "garbage collection": 1,
      "malloc and free": 1,
      "kernel (system calls, scheduling)": 1,
      "other (Node internals, event loop, buffers)": 2,
    });
    expect(r.shares.reduce((a, s) => a + s.share, 0)).toBeCloseTo(1);
  });

  it("finds no samples in text that is not perf script output", () => {
    expect(summarisePerf("").samples).toBe(0);
  });
});
