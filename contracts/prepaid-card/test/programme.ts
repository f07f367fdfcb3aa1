import { fileURLToPath } from "node:url";
import { bundleContract, ContractHarness } from "@custos/contract-sdk/harness";

export const CONTRACT = fileURLToPath(new URL("../src/contract.ts", import.meta.url));
export const DAY = 86_400_000;

const addr = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;

/** The members a programme deals with; every address is a member with its role unless noted. */
export const A = {
  institution: addr(0x1001),
  merchant: addr(0x2001),
  otherMerchant: addr(0x2002),
  regulator: addr(0x3001),
  consumers: [addr(0x4001), addr(0x4002), addr(0x4003), addr(0x4004)],
  /** A member with no role that matters here. */
  auditor: addr(0x5001),
  /** Not a member at all. */
  outsider: addr(0x6001),
};

export const [ALICE, BOB, CAROL, DAVE] = A.consumers as [string, string, string, string];

/** A harness with the members registered and every consumer holding `wallet` fen of e-CNY. */
const bundles = new Map<string, Promise<string>>();
/** The contract bundled once per source file (as `custos contract build` bundles it). */
export function bundled(source = CONTRACT): Promise<string> {
  let b = bundles.get(source);
  if (b === undefined) {
    b = bundleContract(source).then((x) => x.code);
    bundles.set(source, b);
  }
  return b;
}

export async function harness(o: { source?: string; wallet?: bigint } = {}): Promise<ContractHarness> {
  const h = await ContractHarness.fromSource(await bundled(o.source));
  h.setMember(A.institution, ["institution"], "city-bank");
  h.setMember(A.merchant, ["merchant"], "gym");
  h.setMember(A.otherMerchant, ["merchant"], "bakery");
  h.setMember(A.regulator, ["regulator"], "commerce-bureau");
  h.setMember(A.auditor, ["auditor"], "auditor");
  for (const [i, c] of A.consumers.entries()) {
    h.setMember(c, ["consumer"], `consumer-${i + 1}`);
    h.balances.set(c, o.wallet ?? 10_000_000n);
  }
  return h;
}

/** A harness with an opened programme (the institution instantiates it for the merchant). */
export async function programme(
  params: Record<string, unknown> = {},
  o: { source?: string; wallet?: bigint } = {},
): Promise<ContractHarness> {
  const h = await harness(o);
  const r = await h.deploy(
    { merchant: A.merchant, name: "Sunrise Gym", ...params },
    { caller: A.institution },
  );
  if (!r.ok) throw new Error(`deploy failed: ${r.error?.code} ${r.error?.message}`);
  return h;
}

/** Total e-CNY across every account the harness knows (consumers, merchant, contract). */
export function totalEcny(h: ContractHarness): bigint {
  let t = 0n;
  for (const v of h.balances.values()) t += v;
  return t;
}

export interface Receipt {
  ok: boolean;
  output: unknown;
  gasUsed: bigint;
  events: { name: string; data: unknown }[];
  error: { code: string; message: string } | null;
}

/** The output of a call that must succeed (the error in the message otherwise). */
export function ok<T = any>(r: Receipt): T {
  if (!r.ok) throw new Error(`expected success, got ${r.error?.code}: ${r.error?.message}`);
  return r.output as T;
}

export function events(r: Receipt, name: string): any[] {
  return r.events.filter((e) => e.name === name).map((e) => e.data);
}
