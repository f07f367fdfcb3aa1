// Per-call costs on a transaction's path that allocation decides (2026-12-03): each operation as
// the project does it now beside the form it replaced, written out here, in one process.
import { hash } from "node:crypto";
import { decode, encode } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { RecordSealer } from "@custos/sm-secure";
import { bytesEqual, CustosError, refusal, toHex, toLatin1 } from "@custos/utils";
import { opsPerSecond } from "./stats.js";

export interface HotPathBenchOptions {
  runs: number;
  ms: number;
  json: boolean;
}

interface Row {
  operation: string;
  form: "before" | "now" | "floor";
  /** ns per call over the runs: min, median, max */
  ns: [number, number, number];
}

/** A 32-byte array made per call, as hashes and keys are: V8 keeps it on its own heap. */
function fresh(): Uint8Array {
  const u = new Uint8Array(32);
  u[0] = 1;
  return u;
}

const viaBuffer = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export async function runHotPathBench(o: HotPathBenchOptions): Promise<Record<string, unknown>> {
  const other = fresh();
  const body = new Uint8Array(100).fill(3);
  const sealer = new RecordSealer(new Uint8Array(32).fill(9));
  const record = new Uint8Array(1500).fill(5);
  const busy =
    "the chain is busy: 4000 transactions are waiting (about 1 s of what it commits); retry shortly";
  const retryable = { retryable: true };
  const cases: [string, Row["form"], () => unknown][] = [
    ["a new 32-byte array", "floor", () => fresh()],
    ["toHex of a new 32-byte array", "before", () => viaBuffer(fresh()).toString("hex")],
    ["toHex of a new 32-byte array", "now", () => toHex(fresh())],
    ["latin1 key of a new 32-byte array", "before", () => viaBuffer(fresh()).toString("latin1")],
    ["latin1 key of a new 32-byte array", "now", () => toLatin1(fresh())],
    ["bytesEqual, a new 32-byte array", "before", () => viaBuffer(fresh()).equals(other)],
    ["bytesEqual, a new 32-byte array", "now", () => bytesEqual(fresh(), other)],
    ["SM3 of 100 bytes", "before", () => new Uint8Array(hash("sm3", body, "buffer"))],
    ["SM3 of 100 bytes", "now", () => sm3(body)],
    [
      "decode a 12-byte value made by encode",
      "now",
      () => decode(encode([12_345_678_901_234n, "x"]), "V", 64),
    ],
    ["seal a 1,500-byte sm-secure record", "now", () => sealer.seal(record)],
    // a busy pool's refusal; here the stack is a few frames deep, in a node it is the full 10
    ["a TX_POOL_FULL refusal's error", "before", () => new CustosError("TX_POOL_FULL", busy, retryable)],
    ["a TX_POOL_FULL refusal's error", "now", () => refusal("TX_POOL_FULL", busy, retryable)],
  ];
  const rows: Row[] = [];
  for (const [operation, form, fn] of cases) {
    opsPerSecond(fn, o.ms / 4); // warm up (optimised code)
    const ns: number[] = [];
    for (let r = 0; r < o.runs; r++) ns.push(1e9 / opsPerSecond(fn, o.ms));
    ns.sort((a, b) => a - b);
    rows.push({
      operation,
      form,
      ns: [ns[0], ns[ns.length >> 1], ns[ns.length - 1]].map((x) => Math.round(x as number)) as Row["ns"],
    });
  }
  const report = {
    benchmark: "hot-path",
    date: new Date().toISOString(),
    node: process.version,
    runs: o.runs,
    rows,
  };
  if (o.json) console.log(JSON.stringify(report));
  else {
    console.log(
      `hot-path: ns per call, min / median / max over ${o.runs} runs of ${o.ms} ms, ${process.version}`,
    );
    for (const r of rows)
      console.log(
        `${r.operation.padEnd(40)} ${r.form.padEnd(7)} ${r.ns.map((x) => x.toLocaleString("en-US")).join(" / ")}`,
      );
  }
  return report;
}
