// Signs one slice of a phase's transactions for signTransfersParallel / signCallsParallel (load.ts).
import { parentPort, workerData } from "node:worker_threads";
import { type CallPlan, signCalls, signTransfers, type TransferPlan } from "./load.js";

const job = workerData as TransferPlan | { calls: CallPlan };
parentPort?.postMessage("calls" in job ? signCalls(job.calls) : signTransfers(job));
