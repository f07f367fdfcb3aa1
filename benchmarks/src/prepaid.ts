// The prepaid-card workload of the testnet benchmark: purchases and consumptions (核销) in a
// programme of the prepaid-card template, set up before the measured phases.
import { CustosClient, PrepaidProgramme, Wallet } from "@custos/client";
import { ContractHarness } from "@custos/contract-sdk/harness";
import { generateKeyPair, type Sm2KeyPair } from "@custos/crypto";
import { type DemoAccount, setUpPrepaidDemo } from "@custos/testnet";
import type { PlannedCall } from "./load.js";
import { median } from "./stats.js";

export interface PrepaidWorkload {
  programme: string;
  consumers: Sm2KeyPair[];
  /** The stored-value cards each consumer holds for the phases' consumptions. */
  cards: number[][];
  product: { id: number; price: bigint };
  /** 1 purchase in every `purchaseEvery` transactions; the rest are consumptions of 1 fen. */
  purchaseEvery: number;
  describe: string;
}

/**
 * The testnet's prepaid-card demo (the template approved, the training school's programme with
 * its 1,000-yuan stored-value card at 950 yuan, 70 % escrowed), plus `consumers` new consumers
 * added by proposal (tier 1: wallet limits far above the load), funded by the operator, each
 * holding `cardsPerConsumer` cards bought before the measured phases.
 */
export async function setUpPrepaidWorkload(o: {
  rpc: string;
  accounts: readonly DemoAccount[];
  password: string;
  keyOf: (name: string) => Promise<Sm2KeyPair>;
  consumers: number;
  cardsPerConsumer: number;
  purchaseEvery: number;
  log: (s: string) => void;
}): Promise<PrepaidWorkload> {
  const client = new CustosClient(o.rpc);
  o.log("prepaid workload: the template, approved; the programmes (the testnet demo)");
  const demo = await setUpPrepaidDemo({ rpc: o.rpc, accounts: o.accounts, password: o.password });
  const school = demo.programmes.find((p) => p.slug === "bright-future-school");
  const product = school?.products.find((p) => p.kind === "stored" && !p.open);
  if (!school || !product) throw new Error("the demo has no stored-value programme");

  o.log(`prepaid workload: ${o.consumers} consumers added by proposal, funded`);
  const consumers = Array.from({ length: o.consumers }, () => generateKeyPair());
  const proposer = new Wallet(client, await o.keyOf("committee-1"));
  const voter = new Wallet(client, await o.keyOf("committee-2"));
  const operator = new Wallet(client, await o.keyOf("operator"));
  const must = (r: { receipt?: { success: boolean; errorMessage: string | null } }, what: string) => {
    if (!r.receipt?.success) throw new Error(`${what}: ${r.receipt?.errorMessage}`);
    return r.receipt as NonNullable<typeof r.receipt> & { output: any };
  };
  const proposals = await Promise.all(
    consumers.map(async (k, i) =>
      must(
        await proposer.send({
          to: "governance",
          method: "propose",
          args: [
            "member.add",
            JSON.stringify({
              name: `bench-consumer-${i + 1}`,
              publicKey: Buffer.from(k.publicKey).toString("hex"),
              roles: ["consumer"],
              ecnyTier: 1,
            }),
            null,
          ],
        }),
        "proposing a consumer",
      ),
    ),
  );
  await Promise.all(
    proposals.map(async (p) =>
      must(await voter.send({ to: "governance", method: "vote", args: [p.output.id, true] }), "a vote"),
    ),
  );
  await Promise.all(
    consumers.map(async (k, i) =>
      must(
        await operator.send({
          to: "ecny",
          method: "issue",
          args: [k.address, 10n ** 12n, `bench-prepaid-${i}`],
        }),
        "issuing e-CNY",
      ),
    ),
  );

  o.log(`prepaid workload: each consumer buys ${o.cardsPerConsumer} cards for the consumptions`);
  const programme = new PrepaidProgramme(client, school.address);
  const cards = await Promise.all(
    consumers.map(async (k) => {
      const me = programme.as(new Wallet(client, k));
      const ids: number[] = [];
      for (let j = 0; j < o.cardsPerConsumer; j++) ids.push((await me.buy(product.id)).output.id);
      return ids;
    }),
  );
  return {
    programme: school.address,
    consumers,
    cards,
    product: { id: product.id, price: product.price },
    purchaseEvery: o.purchaseEvery,
    describe: `prepaid cards in the training school's programme (70 % escrowed): 1 purchase of a 1,000-yuan stored-value card (950 yuan attached) in every ${o.purchaseEvery} transactions, the rest consumptions of 1 fen on ${o.cardsPerConsumer} cards per consumer bought before the phases, by ${o.consumers} consumers`,
  };
}

/** A phase's calls: consumer i % n sends call i, a purchase every `purchaseEvery`-th, else a use of its next card. */
export function prepaidCalls(w: PrepaidWorkload, count: number, offset: number): PlannedCall[] {
  const n = w.consumers.length;
  return Array.from({ length: count }, (_, k) => {
    const i = offset + k;
    const sender = i % n;
    if (i % w.purchaseEvery === w.purchaseEvery - 1)
      return { sender, to: w.programme, method: "buy", args: [w.product.id], value: w.product.price };
    const mine = w.cards[sender] as number[];
    const card = mine[Math.floor(i / n) % mine.length] as number;
    return { sender, to: w.programme, method: "consume", args: [card, 1n], value: 0n };
  });
}

/**
 * The VM's own ceiling for this workload, measured in the run: the template's consume (1 fen of a
 * stored-value card) and buy on one core, in the contract VM over state in memory (the local
 * test harness, the chain's VM and gas). Every validator executes every transaction (the leader
 * to build the block, the others to check it), so cores × rate / validators bounds the TPS that
 * contract execution alone allows.
 */
export async function measurePrepaidCeiling(
  ms = 1000,
): Promise<{ consumePerCore: number; buyPerCore: number }> {
  const { CONTRACT_SOURCE } = await import("@custos/prepaid-card");
  const h = await ContractHarness.fromFile(CONTRACT_SOURCE);
  const address = (n: number) => `0x${n.toString(16).padStart(40, "0")}`;
  const [institution, merchant, consumer] = [address(1), address(2), address(3)];
  h.setMember(institution, ["institution"]);
  h.setMember(merchant, ["merchant"]);
  h.setMember(consumer, ["consumer"]);
  h.balances.set(consumer, 10n ** 15n);
  const must = (r: { ok: boolean; error?: { message: string } | null }) => {
    if (!r.ok) throw new Error(`prepaid ceiling: ${r.error?.message}`);
  };
  must(
    await h.deploy(
      { merchant, name: "ceiling", issuerClass: "scale", escrowShareBps: 7000 },
      { caller: institution },
    ),
  );
  must(
    await h.call("addProduct", [{ name: "card", kind: "stored", faceValue: 100_000n, price: 95_000n }], {
      caller: merchant,
    }),
  );
  for (let i = 0; i < 4; i++) must(await h.call("buy", [1], { caller: consumer, value: 95_000n }));
  const rate = async (f: (i: number) => Promise<void>) => {
    const rates: number[] = [];
    for (let run = 0; run < 3; run++) {
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < ms / 3) await f(n++);
      rates.push((n * 1000) / (performance.now() - t0));
    }
    return Math.round(median(rates));
  };
  const consumePerCore = await rate(async (i) =>
    must(await h.call("consume", [1 + (i % 4), 1n], { caller: consumer })),
  );
  const buyPerCore = await rate(async () =>
    must(await h.call("buy", [1], { caller: consumer, value: 95_000n })),
  );
  return { consumePerCore, buyPerCore };
}
