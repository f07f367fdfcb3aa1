// Signs one slice of a phase's transfers for signTransfersParallel (load.ts).
import { parentPort, workerData } from "node:worker_threads";
import { signTransfers, type TransferPlan } from "./load.js";

parentPort?.postMessage(signTransfers(workerData as TransferPlan));
