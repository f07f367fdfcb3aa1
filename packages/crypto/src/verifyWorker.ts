// A verify worker for the JS backend: takes packed batches, answers 0/1 per item.
import { parentPort } from "node:worker_threads";
import { type PackedBatch, verifyPackedSync } from "./sm2/backend.js";
import { JsSm2Backend } from "./sm2/jsBackend.js";

const backend = new JsSm2Backend();

parentPort?.on("message", (msg: { id: number; batch: PackedBatch }) => {
  const results = verifyPackedSync(backend, msg.batch);
  parentPort?.postMessage({ id: msg.id, results }, [results.buffer as ArrayBuffer]);
});
