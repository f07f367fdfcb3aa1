// A small contract: a counter per caller with a configurable step, and a tip jar.
import { emit, env, revert, storage, transfer } from "@custos/contract-sdk";

interface Params {
  step?: number;
}

export function init(params: Params | null): void {
  storage.set("owner", env.caller);
  storage.setJson("step", params?.step ?? 1);
}

export function increment(): number {
  const step = storage.getJson<number>("step") ?? 1;
  const key = `count:${env.caller}`;
  const n = (storage.getJson<number>(key) ?? 0) + step;
  storage.setJson(key, n);
  emit("Incremented", { who: env.caller, n });
  return n;
}

export function countOf(who: string): number {
  return storage.getJson<number>(`count:${who}`) ?? 0;
}

/** Every counter, in address order. */
export function all(): Array<[string, number]> {
  return storage.scan("count:").map(([k, v]) => [k.slice(6), JSON.parse(v) as number]);
}

export function tip(): bigint {
  if (env.value === 0n) revert("NO_VALUE", "attach some e-CNY to tip");
  return env.value;
}

export function withdraw(amount: bigint): void {
  if (env.caller !== storage.get("owner")) revert("NOT_OWNER", "only the owner withdraws");
  transfer(env.caller, BigInt(amount));
}
