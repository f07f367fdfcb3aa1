// Version 1.1.0 of counter.ts: the same contract, and a caller can take one back.
import { emit, env, storage } from "@custos/contract-sdk";

export * from "./counter.js";

export function decrement(): number {
  const key = `count:${env.caller}`;
  const n = Math.max(0, (storage.getJson<number>(key) ?? 0) - 1);
  storage.setJson(key, n);
  emit("Decremented", { who: env.caller, n });
  return n;
}
