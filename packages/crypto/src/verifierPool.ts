import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { CustosError } from "@custos/utils";
import { type PackedBatch, packBatch, type Sm2Backend, type VerifyItem } from "./sm2/backend.js";
import { sm2Backend } from "./sm2/select.js";

export interface VerifierPoolOptions {
  /** Parallel verifiers; defaults to the machine's available parallelism. */
  threads?: number;
  /** Largest batch handed to one thread at a time. */
  maxChunk?: number;
  /**
   * Native backend: a gathered batch of at most this many signatures is checked on the calling
   * thread instead (default 4). A single signature through libuv's pool and back cost ~200 us of
   * process CPU on the 2-core reference VM, checked in place ~125 us (2026-12-02; since
   * 2026-12-03 a known sender's signature takes ~60 us in place); the pool pays when batches
   * are large, i.e. when the main thread is busy, and batches grow with load. 0 sends every batch
   * to the pool.
   */
  inlineMax?: number;
  /** Defaults to the process-wide backend (`selectSm2`). */
  backend?: Sm2Backend;
}

interface Pending {
  item: VerifyItem;
  resolve: (ok: boolean) => void;
  reject: (err: unknown) => void;
}

/**
 * Verifies SM2 signatures. Single `verify` calls made in the same tick are gathered into one
 * batch. With the native backend a batch of at most `inlineMax` is checked on the event loop
 * (~0.06 ms a signature from a known sender, ~0.13 ms from a new one) and a larger one on libuv's
 * thread pool through the addon's async path; with the JS backend every batch goes to worker
 * threads.
 */
export class VerifierPool {
  readonly backend: Sm2Backend;
  readonly threads: number;
  private readonly maxChunk: number;
  private readonly inlineMax: number;
  private readonly workers: JsWorkerSet | null;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private closed = false;

  constructor(opts: VerifierPoolOptions = {}) {
    this.backend = opts.backend ?? sm2Backend();
    this.threads = Math.max(1, opts.threads ?? availableParallelism());
    this.maxChunk = Math.max(1, opts.maxChunk ?? 1024);
    this.inlineMax = Math.max(0, opts.inlineMax ?? 4);
    this.workers = this.backend.verifyPackedAsync ? null : new JsWorkerSet(this.threads);
  }

  /** Resolves to whether the signature is valid; never rejects on malformed input. */
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (this.closed) return Promise.reject(closedError());
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ item: { publicKey, message, signature }, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Verifies many signatures, spread over the threads; results in input order. */
  async verifyBatch(items: readonly VerifyItem[]): Promise<boolean[]> {
    if (this.closed) throw closedError();
    if (items.length === 0) return [];
    const chunkSize = Math.min(this.maxChunk, Math.ceil(items.length / this.threads));
    const chunks: Promise<Uint8Array>[] = [];
    for (let i = 0; i < items.length; i += chunkSize) {
      chunks.push(this.run(packBatch(items.slice(i, i + chunkSize))));
    }
    const out: boolean[] = [];
    for (const r of await Promise.all(chunks)) for (const b of r) out.push(b === 1);
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(closedError());
    await this.workers?.close();
  }

  private run(batch: PackedBatch): Promise<Uint8Array> {
    if (this.workers) return this.workers.run(batch);
    return (this.backend.verifyPackedAsync as (b: PackedBatch) => Promise<Uint8Array>).call(
      this.backend,
      batch,
    );
  }

  private flush(): void {
    this.flushScheduled = false;
    const pending = this.queue;
    this.queue = [];
    if (pending.length === 0) return;
    if (this.workers === null && pending.length <= this.inlineMax) {
      for (const p of pending) {
        try {
          p.resolve(this.backend.verify(p.item.publicKey, p.item.message, p.item.signature));
        } catch (err) {
          p.reject(err);
        }
      }
      return;
    }
    this.verifyBatch(pending.map((p) => p.item)).then(
      (results) => {
        for (const [i, p] of pending.entries()) p.resolve(results[i] === true);
      },
      (err) => {
        for (const p of pending) p.reject(err);
      },
    );
  }
}

function closedError(): CustosError {
  return new CustosError("VERIFIER_POOL_CLOSED", "the verifier pool is closed");
}

/**
 * The worker runs built JavaScript, so export conditions given to this process (a test runner
 * adds `--conditions custos-source` to load TypeScript sources) must not reach it.
 */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--conditions" || arg === "-C") i++;
    else if (!arg.startsWith("--conditions=")) out.push(arg);
  }
  return out;
}

/**
 * Worker threads running the JS backend. The worker is the compiled `dist/verifyWorker.js`
 * (Node 20 cannot run TypeScript in a worker), so the JS pool needs `npm run build` first.
 */
class JsWorkerSet {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<
    number,
    { resolve: (r: Uint8Array) => void; reject: (e: unknown) => void }
  >();
  private nextId = 0;
  private nextWorker = 0;
  private referenced = false;

  constructor(count: number) {
    const url = new URL("../dist/verifyWorker.js", import.meta.url);
    if (!existsSync(fileURLToPath(url))) {
      throw new CustosError(
        "CRYPTO_WORKER_MISSING",
        `verify worker not built (${url.pathname}); run npm run build`,
      );
    }
    for (let i = 0; i < count; i++) {
      const w = new Worker(url, { execArgv: workerExecArgv() });
      w.on("message", (m: { id: number; results: Uint8Array }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.updateRefs();
        p?.resolve(m.results);
      });
      w.on("error", (err) => {
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        this.updateRefs();
      });
      w.unref();
      this.workers.push(w);
    }
  }

  run(batch: PackedBatch): Promise<Uint8Array> {
    const id = this.nextId++;
    const w = this.workers[this.nextWorker++ % this.workers.length] as Worker;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.updateRefs();
      const transfer = [
        batch.pubs.buffer,
        batch.msgs.buffer,
        batch.offsets.buffer,
        batch.sigs.buffer,
      ] as ArrayBuffer[];
      w.postMessage({ id, batch }, transfer);
    });
  }

  /** Idle workers never keep the process alive; busy ones do, so awaited work always finishes. */
  private updateRefs(): void {
    const busy = this.pending.size > 0;
    if (busy === this.referenced) return;
    this.referenced = busy;
    for (const w of this.workers) busy ? w.ref() : w.unref();
  }

  async close(): Promise<void> {
    for (const p of this.pending.values()) p.reject(closedError());
    this.pending.clear();
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
