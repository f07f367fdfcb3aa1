import { createRequire } from "node:module";
import { availableParallelism, cpus } from "node:os";
import {
  generateKeyPair,
  JsSm2Backend,
  NativeSm2Backend,
  type Sm2Backend,
  type Sm2KeyPair,
  sm3,
  VerifierPool,
  type VerifyItem,
} from "@custos/crypto";
import { toHex } from "@custos/utils";
import { medianOf, opsPerSecond } from "./stats.js";

export interface CryptoBenchOptions {
  runs: number;
  ms: number;
  json: boolean;
}

interface Row {
  backend: string;
  operation: string;
  threads: number;
  opsPerSec: number;
  runs: number[];
}

const KEYS = 256;
const FRESH_KEYS = 2048;
/** The senders of the testnet benchmark's transfers: a thread keeps all their tables. */
const FEW_KEYS = 9;

function workload(backend: Sm2Backend, keys: Sm2KeyPair[]): VerifyItem[] {
  return keys.map((k, i) => {
    const message = new TextEncoder().encode(`transfer ${i} fen to merchant`);
    return { publicKey: k.publicKey, message, signature: backend.sign(k.privateKey, message) };
  });
}

async function benchBackend(
  backend: Sm2Backend,
  keys: Sm2KeyPair[],
  o: CryptoBenchOptions,
  rows: Row[],
): Promise<void> {
  const items = workload(backend, keys);
  const msg = new TextEncoder().encode("bench");
  const signer = keys[0] as Sm2KeyPair;
  const add = async (operation: string, threads: number, measure: () => number | Promise<number>) => {
    const r = await medianOf(o.runs, measure);
    rows.push({
      backend: backend.name,
      operation,
      threads,
      opsPerSec: Math.round(r.median),
      runs: r.runs.map(Math.round),
    });
  };
  for (const it of items) backend.verify(it.publicKey, it.message, it.signature); // warm caches
  await add("sign", 1, () => opsPerSecond(() => backend.sign(signer.privateKey, msg), o.ms));
  /** Verifications per second on this thread, cycling over `list`. */
  const verifyRate = (list: VerifyItem[]) =>
    opsPerSecond((i) => {
      const it = list[i % list.length] as VerifyItem;
      if (!backend.verify(it.publicKey, it.message, it.signature))
        throw new Error("benchmark signature invalid");
    }, o.ms);
  await add(`verify (${KEYS} keys)`, 1, () => verifyRate(items));
  if (backend instanceof NativeSm2Backend) {
    await add("verify, OpenSSL EC_POINT_mul path", 1, () =>
      opsPerSecond((i) => {
        const it = items[i % items.length] as VerifyItem;
        backend.verifyReference(it.publicKey, it.message, it.signature);
      }, o.ms),
    );
  }
  const threads = availableParallelism();
  const pool = new VerifierPool({ backend, threads });
  try {
    // enough work for about o.ms at the single-core rate times the thread count
    const single = rows[rows.length - (backend instanceof NativeSm2Backend ? 2 : 1)]?.opsPerSec ?? 1000;
    const batchSize = Math.max(threads * 64, Math.round((single * threads * o.ms) / 1000));
    const batch = Array.from({ length: batchSize }, (_, i) => items[i % items.length] as VerifyItem);
    await pool.verifyBatch(batch.slice(0, threads * 32));
    await add("verify, verifier pool", threads, async () => {
      const start = performance.now();
      const res = await pool.verifyBatch(batch);
      const elapsed = performance.now() - start;
      if (res.some((ok) => !ok)) throw new Error("benchmark signature invalid");
      return (batch.length * 1000) / elapsed;
    });
  } finally {
    await pool.close();
  }
  if (backend instanceof NativeSm2Backend) {
    // more keys than a verifying thread keeps (512), cycled: every verification is a key's first
    const fresh = workload(
      backend,
      Array.from({ length: FRESH_KEYS }, () => generateKeyPair()),
    );
    await add(`verify, each key's first time (${FRESH_KEYS} keys)`, 1, () => verifyRate(fresh));
    const few = items.slice(0, FEW_KEYS);
    await add(`verify (${FEW_KEYS} keys, as the testnet benchmark's senders)`, 1, () => verifyRate(few));
  }
}

export async function runCryptoBench(o: CryptoBenchOptions): Promise<Record<string, unknown>> {
  const keys = Array.from({ length: KEYS }, () => generateKeyPair());
  const rows: Row[] = [];
  let native: NativeSm2Backend | null = null;
  try {
    native = new NativeSm2Backend();
  } catch {
    native = null;
  }
  if (native) await benchBackend(native, keys, o, rows);
  await benchBackend(new JsSm2Backend(), keys, o, rows);

  // sm-crypto, the original library, for reference (slow: a short fixed count)
  const smc = createRequire(import.meta.url)("sm-crypto").sm2 as {
    doSignature(m: string, priv: string, o: object): string;
    doVerifySignature(m: string, s: string, pub: string, o: object): boolean;
  };
  const k = keys[0] as Sm2KeyPair;
  const pubHex = `04${toHex(new JsSm2Backend().publicKey(k.privateKey)).slice(2)}`;
  const sig = smc.doSignature("bench", toHex(k.privateKey), { hash: true, der: false });
  for (const [operation, fn] of [
    ["sign", () => smc.doSignature("bench", toHex(k.privateKey), { hash: true, der: false })],
    ["verify", () => smc.doVerifySignature("bench", sig, pubHex, { hash: true, der: false })],
  ] as const) {
    const r = await medianOf(Math.min(o.runs, 3), () => opsPerSecond(fn, Math.min(o.ms, 300)));
    rows.push({
      backend: "sm-crypto",
      operation,
      threads: 1,
      opsPerSec: Math.round(r.median),
      runs: r.runs.map(Math.round),
    });
  }

  // SM3 throughput for context (1 KiB messages)
  const kib = new Uint8Array(1024);
  const sm3Rate = await medianOf(o.runs, () => opsPerSecond(() => sm3(kib), o.ms / 2));

  const report = {
    benchmark: "crypto",
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? "unknown",
      node: process.versions.node,
      openssl: process.versions.openssl,
    },
    method: `median of ${o.runs} runs of ~${o.ms} ms; verify cycles over ${KEYS} keys`,
    results: rows,
    sm3MiBPerSec: Math.round(sm3Rate.median / 1024),
  };
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const lines = [
      `crypto benchmark on ${report.machine.cpus} x ${report.machine.model}, Node ${report.machine.node}, OpenSSL ${report.machine.openssl}`,
      report.method,
      "",
      `${"backend".padEnd(11)}${"operation".padEnd(36)}${"threads".padStart(8)}${"ops/s".padStart(10)}   runs`,
      ...rows.map(
        (r) =>
          `${r.backend.padEnd(11)}${r.operation.padEnd(36)}${String(r.threads).padStart(8)}${String(r.opsPerSec).padStart(10)}   ${r.runs.join(" ")}`,
      ),
      "",
      `SM3 (node:crypto): ${report.sm3MiBPerSec} MiB/s on 1 KiB messages`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return report;
}
