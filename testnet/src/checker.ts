import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { CustosError, errorMessage, sleep } from "@custos/utils";
import { skewClock } from "./clock.js";
import { seededRandom } from "./links.js";
import * as testnet from "./testnet.js";

/**
 * A checker in the spirit of Jepsen (issue 17): one testnet of real processes whose peers talk
 * through the link proxy, a workload of e-CNY transfers sent through every validator that
 * records each acknowledged transaction, and a seeded schedule of faults. After the faults are
 * healed it checks what a bank's operations team would ask:
 * - no acknowledged transaction is lost: each is committed on every node, in the same block;
 * - every node has the same chain: the same block hash at every height;
 * - total e-CNY is conserved, and every node reports the same balances;
 * - after each heal the chain commits again within `recoverBoundMs`;
 * - views stay bounded (`maxView`): no view-change storm;
 * - block time stays true: no block is timestamped more than the validators' clock drift bound
 *   ahead of when the checker first saw its height (a validator with its clock ahead must not
 *   move the time contracts see).
 *
 * `custos testnet check --seed N` runs one seed and prints what each step did; a failing seed
 * runs again with the same command (the schedule is a function of the seed; the timing of real
 * processes is not, so a failure that depends on a race may need a few runs).
 */
export const FAULT_KINDS = [
  /** The next proposer alone on one side (or with one other validator): the majority must move on without it. */
  "partition-leader",
  /** Two validators on each side: nobody has a quorum until the heal. */
  "partition-halves",
  /** Delay, jitter and 30% chunk loss on every link to and from one validator. */
  "lossy-link",
  /** 200 ms ± 100 ms on every link, 64 KB/s on one validator's. */
  "slow-link",
  /** The next proposer's messages to two validators are dropped (one-way). */
  "one-way-cut",
  /** kill -9 of every validator at once, then all restarted. */
  "kill-all",
  /** kill -9 of one validator, restarted after the hold. */
  "kill-one",
  /** SIGSTOP of two validators (quorum lost), SIGCONT after the hold. */
  "pause-two",
  /** The next proposer's clock 1-9 minutes ahead (or, a third of the time, behind), right again at the heal. */
  "clock-skew",
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** The slice in `npm test`: what issue 17's acceptance asks the CI run to cover. */
export const CI_FAULTS: FaultKind[] = ["partition-leader", "lossy-link", "kill-all", "pause-two"];

export interface CheckOptions {
  seed: number;
  /** How to run `custos` (as testnet up takes it). */
  command: string[];
  /** The faults to draw from; each appears once before any repeats. Default: every kind. */
  faults?: FaultKind[];
  /** Number of faults in the schedule (default: faults.length). */
  steps?: number;
  /** How long each fault holds while the workload runs (default 4000 ms). */
  holdMs?: number;
  /** After each heal the chain must commit again within this (default 30 s). */
  recoverBoundMs?: number;
  /** The highest view any validator may reach (default 8). */
  maxView?: number;
  /** consensus.maxClockDriftMs of the testnet's validators (default 5000). */
  maxClockDriftMs?: number;
  /** Concurrent workload clients (default 3). */
  clients?: number;
  observers?: number;
  /** Nodes in network namespaces where the machine allows it (default); false: all on 127.0.0.1. */
  netns?: boolean;
  /** An existing directory to hold the testnet (default: a new temporary one, removed unless keep). */
  dir?: string;
  keep?: boolean;
  /** One line per event, as it happens. */
  log?: (line: string) => void;
}

export interface StepReport {
  step: number;
  fault: FaultKind;
  /** What exactly was done, e.g. "partition 2 | 0,1,3 (validator-2 proposes next)". */
  did: string;
  heldMs: number;
  /** From the heal to the next commit on any validator. */
  recoverMs: number;
  heightAtHeal: number;
}

export interface CheckResult {
  seed: number;
  ok: boolean;
  failures: string[];
  steps: StepReport[];
  acknowledged: number;
  /** Sent but not acknowledged (timed out or refused while a fault held): may or may not commit. */
  unacknowledged: number;
  lost: string[];
  height: number;
  maxViewSeen: number;
  longestRecoverMs: number;
  wallMs: number;
  reproduce: string;
  dir: string;
  /** Where the faults were made: "network namespaces" (the kernel's) or why on 127.0.0.1. */
  network: string;
}

interface Ack {
  hash: string;
  height: number;
  blockHash: string;
  via: number;
}

const VALIDATORS = 4;

/** The next proposer: of (height + 1, view) it is (height + 1 + view) mod n. */
function nextProposer(height: number, view: number): number {
  return (height + 1 + view) % VALIDATORS;
}

function pickDistinct(rnd: () => number, from: number[], k: number): number[] {
  const pool = [...from];
  const out: number[] = [];
  while (out.length < k && pool.length > 0)
    out.push(pool.splice(Math.floor(rnd() * pool.length), 1)[0] as number);
  return out;
}

/** The schedule of a seed: which faults in which order (a pure function of the options). */
export function schedule(seed: number, faults: readonly FaultKind[], steps: number): FaultKind[] {
  const rnd = seededRandom(seed * 7919 + 17);
  const out: FaultKind[] = [];
  while (out.length < steps) {
    const round = [...faults];
    while (round.length > 0 && out.length < steps)
      out.push(round.splice(Math.floor(rnd() * round.length), 1)[0] as FaultKind);
  }
  return out;
}

export async function check(o: CheckOptions): Promise<CheckResult> {
  const started = Date.now();
  const faults = o.faults ?? [...FAULT_KINDS];
  const plan = schedule(o.seed, faults, o.steps ?? faults.length);
  const holdMs = o.holdMs ?? 4000;
  const recoverBoundMs = o.recoverBoundMs ?? 30_000;
  const maxView = o.maxView ?? 8;
  const maxClockDriftMs = o.maxClockDriftMs ?? 5000;
  const log = o.log ?? (() => {});
  const rnd = seededRandom(o.seed);
  const dir = o.dir ?? (await mkdtemp(join(tmpdir(), `custos-check-${o.seed}-`)));
  const reproduce = `npx custos testnet check --seed ${o.seed} --faults ${faults.join(",")} --steps ${plan.length} --hold ${holdMs}${o.netns === false ? " --no-netns" : ""}`;
  const failures: string[] = [];
  const steps: StepReport[] = [];
  const acks: Ack[] = [];
  let unacknowledged = 0;
  let maxViewSeen = 0;
  /** When the checker first saw each height on some validator (its own clock, which is right). */
  const firstSeen = new Map<number, number>();
  let highestSeen = 0;
  // the workload and the sampler stop on every way out, a failed setup included
  let stop = false;
  let sampling = true;

  log(`seed ${o.seed}: schedule ${plan.join(", ")} (hold ${holdMs} ms each) in ${dir}`);
  const t = await testnet.up({
    dir,
    nodes: VALIDATORS,
    observers: o.observers ?? 0,
    basePort: await testnet.freeBasePort(VALIDATORS + (o.observers ?? 0), 20_000, 10_000, true),
    command: o.command,
    blockIntervalMs: 50,
    faults: true,
    ...(o.netns === false ? { netns: false } : {}),
    // shorter view timeouts than production's 3 s so that a schedule runs in CI time
    consensus: { baseTimeoutMs: 1500, maxTimeoutMs: 12_000, maxClockDriftMs },
    timeoutMs: 120_000,
  });
  const network = t.netns
    ? `network namespaces (${t.netns.subnet}.0/24): the kernel cuts and loses packets, the link proxy delays them`
    : (t.links?.fallback ?? "127.0.0.1");
  log(`seed ${o.seed}: network faults in ${network}`);
  const all = t.nodes.map((_, i) => i);
  const client = (i: number) =>
    new CustosClient((t.nodes[i] as testnet.TestnetNode).rpc, { timeoutMs: 5000 });
  const clients = all.map(client);
  const statusOf = async (i: number) => (clients[i] as CustosClient).status().catch(() => undefined);
  const heights = async (nodes = all) =>
    Promise.all(nodes.map(async (i) => (await statusOf(i))?.height ?? -1));

  const until = async (what: string, pred: () => Promise<boolean>, ms: number): Promise<boolean> => {
    const end = Date.now() + ms;
    for (let k = 0; k < 100_000; k++) {
      if (await pred().catch(() => false)) return true;
      if (Date.now() > end) {
        failures.push(`${what}: not within ${ms} ms`);
        return false;
      }
      await sleep(200);
    }
    return false;
  };

  try {
    const password = readFileSync(t.passwordFile, "utf8").trim();
    const keys = new Map<string, Sm2KeyPair>();
    for (const a of t.accounts) keys.set(a.name, await loadKeystoreFile(a.keyFile, password));
    const key = (name: string) => keys.get(name) as Sm2KeyPair;
    const payers = ["consumer-1", "consumer-2", "consumer-3"].slice(
      0,
      Math.max(1, Math.min(3, o.clients ?? 3)),
    );
    const payees = ["merchant-1", "merchant-2", "consumer-1", "consumer-2", "consumer-3"];

    // money to move: issued once, acknowledged before the faults start
    let issued = 0n;
    for (const [k, name] of payers.entries()) {
      const r = await new Wallet(clients[0] as CustosClient, key("operator")).send(
        { to: "ecny", method: "issue", args: [key(name).address, 1_000_000n, `check-${o.seed}-${k}`] },
        { timeoutMs: 60_000 },
      );
      if (!r.receipt?.success) throw new CustosError("CHECK_SETUP_FAILED", `issuing to ${name} failed`);
      issued += 1_000_000n;
    }
    const total = async (i: number) => {
      let sum = 0n;
      const by: Record<string, string> = {};
      for (const a of t.accounts) {
        const b = (await (clients[i] as CustosClient).ecnyBalance(a.address)).balance;
        by[a.name] = b;
        sum += BigInt(b);
      }
      return { sum, by };
    };
    const supply = (await total(0)).sum;
    log(`seed ${o.seed}: issued ${issued} fen; total e-CNY of the demo members ${supply} fen`);

    // the workload: each client sends one transfer at a time, through the validators in turn
    const workload = payers.map(async (payer, c) => {
      let k = 0;
      for (let n = 0; !stop && n < 100_000; n++) {
        const via = (c + k++) % VALIDATORS;
        const to = payees.filter((p) => p !== payer)[n % 4] as string;
        try {
          const w = new Wallet(clients[via] as CustosClient, key(payer));
          const stx = await w.build({ to: "ecny", method: "transfer", args: [key(to).address, 1n] });
          const hash = await (clients[via] as CustosClient).sendRawTx(stx.bytes);
          const v = await (clients[via] as CustosClient).waitForTx(hash, { timeoutMs: 15_000 });
          if (v.status === "committed" && v.blockHeight !== undefined)
            acks.push({ hash, height: v.blockHeight, blockHash: v.blockHash ?? "", via });
          else unacknowledged++;
        } catch {
          unacknowledged++;
          await sleep(100); // a node that is down answers at once: do not spin
        }
      }
    });

    const sampler = (async () => {
      for (let k = 0; sampling && k < 1_000_000; k++) {
        for (const i of all.slice(0, VALIDATORS)) {
          const s = (await statusOf(i)) as { view?: number; height?: number } | undefined;
          if (s?.view !== undefined && s.view > maxViewSeen) maxViewSeen = s.view;
          for (const now = Date.now(); s?.height !== undefined && highestSeen < s.height; )
            firstSeen.set(++highestSeen, now);
        }
        await sleep(250);
      }
    })();

    const validators = all.slice(0, VALIDATORS);
    const leaderNow = async () => {
      for (const i of validators) {
        const s = await statusOf(i);
        if (s) return nextProposer(s.height, (s as unknown as { view: number }).view);
      }
      return 0;
    };

    await until("the workload commits before the first fault", async () => acks.length >= 3, 60_000);

    for (const [step, fault] of plan.entries()) {
      const leader = await leaderNow();
      const others = validators.filter((v) => v !== leader);
      let did = "";
      let undo: () => Promise<void> = async () => {};
      switch (fault) {
        case "partition-leader": {
          const buddy = rnd() < 0.5 ? pickDistinct(rnd, others, 1) : [];
          const minority = [leader, ...buddy];
          const groups = await testnet.partition(dir, [minority]);
          did = `partition ${groups.map((g) => g.join(",")).join(" | ")} (validator-${leader} proposes next, in the minority${buddy.length ? " with one other: no quorum anywhere" : ""})`;
          undo = () => testnet.heal(dir);
          break;
        }
        case "partition-halves": {
          const a = pickDistinct(rnd, validators, 2);
          const groups = await testnet.partition(dir, [a]);
          did = `partition ${groups.map((g) => g.join(",")).join(" | ")} (two and two: no quorum)`;
          undo = () => testnet.heal(dir);
          break;
        }
        case "lossy-link": {
          const v = pickDistinct(rnd, validators, 1)[0] as number;
          const s = { delayMs: 20, jitterMs: 40, loss: 0.3, duplicate: 0.05 };
          await testnet.setLinks(dir, v, "*", s, true);
          did = `lossy links to and from validator-${v}: ${JSON.stringify(s)}`;
          undo = () => testnet.heal(dir);
          break;
        }
        case "slow-link": {
          const v = pickDistinct(rnd, validators, 1)[0] as number;
          await testnet.setLinks(dir, "*", "*", { delayMs: 200, jitterMs: 100 });
          await testnet.setLinks(dir, v, "*", { delayMs: 200, jitterMs: 100, bandwidth: 64 * 1024 }, true);
          did = `200 ms ± 100 ms on every link, 64 KB/s to and from validator-${v}`;
          undo = () => testnet.heal(dir);
          break;
        }
        case "one-way-cut": {
          const to = pickDistinct(rnd, others, 2);
          for (const j of to) await testnet.cut(dir, leader, j);
          did = `one-way cuts validator-${leader} (proposes next) -> ${to.map((j) => `validator-${j}`).join(", ")}`;
          undo = () => testnet.heal(dir);
          break;
        }
        case "kill-all": {
          await Promise.all(validators.map((v) => testnet.kill(dir, v)));
          const highestAck = Math.max(0, ...acks.map((a) => a.height));
          did = `kill -9 of every validator (highest acknowledged block ${highestAck})`;
          // what each validator acknowledged itself: it must have it on disk after the crash (a
          // validator that lagged behind the others may start lower than another's acknowledgement)
          const ownAck = validators.map((v) =>
            Math.max(0, ...acks.filter((a) => a.via === v).map((a) => a.height)),
          );
          undo = async () => {
            await Promise.all(validators.map((v) => testnet.restart(dir, v, 60_000)));
            const hs = await heights(validators);
            if (Math.max(...hs) < highestAck)
              failures.push(
                `after kill -9 of all: heights ${hs.join(",")}, all below the acknowledged ${highestAck}`,
              );
            for (const v of validators)
              if ((hs[v] ?? -1) < (ownAck[v] ?? 0))
                failures.push(
                  `after kill -9 of all: validator-${v} restarted at ${hs[v]}, below block ${ownAck[v]} it had acknowledged`,
                );
          };
          break;
        }
        case "kill-one": {
          const v = rnd() < 0.5 ? leader : (pickDistinct(rnd, others, 1)[0] as number);
          await testnet.kill(dir, v);
          did = `kill -9 of validator-${v}${v === leader ? " (proposes next)" : ""}`;
          undo = async () => {
            await testnet.restart(dir, v, 60_000);
          };
          break;
        }
        case "clock-skew": {
          const ahead = rnd() < 2 / 3;
          const skewMs = (ahead ? 1 : -1) * 60_000 * (1 + Math.floor(rnd() * 9));
          await skewClock(dir, leader, skewMs);
          did = `validator-${leader} (proposes next) with its clock ${Math.abs(skewMs) / 60_000} min ${ahead ? "ahead" : "behind"}`;
          undo = async () => {
            await skewClock(dir, leader, 0);
          };
          break;
        }
        case "pause-two": {
          const two = pickDistinct(rnd, validators, 2);
          for (const v of two) await testnet.pause(dir, v);
          did = `SIGSTOP of validator-${two[0]} and validator-${two[1]} (quorum lost)`;
          undo = async () => {
            for (const v of two) await testnet.resume(dir, v);
          };
          break;
        }
      }
      log(`seed ${o.seed} step ${step + 1}/${plan.length}: ${did}; holding ${holdMs} ms`);
      const held = Date.now();
      await sleep(holdMs); // the fault's duration is the schedule's, not a guess at a condition
      await undo();
      const healedAt = Date.now();
      const heightAtHeal = Math.max(...(await heights(validators)));
      // the chain commits again (the workload keeps transactions waiting)
      const recovered = await until(
        `step ${step + 1} (${fault}): a commit after the heal`,
        async () => Math.max(...(await heights(validators))) > heightAtHeal,
        recoverBoundMs,
      );
      const recoverMs = Date.now() - healedAt;
      steps.push({ step: step + 1, fault, did, heldMs: healedAt - held, recoverMs, heightAtHeal });
      log(
        `seed ${o.seed} step ${step + 1}: healed at height ${heightAtHeal}; ${recovered ? `committed again after ${recoverMs} ms` : "NO commit within the bound"}`,
      );
      // every node catches up before the next fault, so that each fault meets a whole network
      const top = Math.max(...(await heights(validators)));
      await until(
        `step ${step + 1} (${fault}): every node back at height ${top}`,
        async () => (await heights()).every((h) => h >= top),
        60_000,
      );
    }

    stop = true;
    await Promise.all(workload);
    sampling = false;
    await sampler;

    // the verdict
    const top = Math.max(...(await heights()));
    await until(
      `every node at the final height ${top}`,
      async () => (await heights()).every((h) => h >= top),
      60_000,
    );
    const final = Math.min(...(await heights()));
    const hashes = new Map<number, string>();
    let ahead = 0;
    for (let h = 1; h <= final; h++) {
      const seen = new Set<string>();
      let timestamp = 0;
      for (const i of all) {
        const b = (await (clients[i] as CustosClient).getBlock(h)) as { hash: string; timestamp: number };
        seen.add(b.hash);
        timestamp = b.timestamp;
      }
      if (seen.size !== 1) failures.push(`height ${h}: nodes disagree (${[...seen].join(" vs ")})`);
      hashes.set(h, [...seen][0] as string);
      // a second for the sampler's round over the validators
      const at = firstSeen.get(h);
      if (at !== undefined && timestamp > at + maxClockDriftMs + 1000 && ahead++ < 5)
        failures.push(
          `height ${h}: block time ${new Date(timestamp).toISOString()} is ${timestamp - at} ms ahead of when the height was first seen (bound ${maxClockDriftMs} ms)`,
        );
    }
    const lost: string[] = [];
    for (const a of acks) {
      for (const i of all) {
        const v = await (clients[i] as CustosClient).getTx(a.hash).catch(() => undefined);
        if (v?.status !== "committed" || v.blockHeight !== a.height || v.blockHash !== a.blockHash) {
          lost.push(
            `${a.hash} (acknowledged by validator-${a.via} in block ${a.height}; node ${i}: ${v ? `${v.status} ${v.blockHeight ?? ""}` : "unknown"})`,
          );
          break;
        }
      }
    }
    if (lost.length > 0)
      failures.push(`${lost.length} acknowledged transactions lost: ${lost.slice(0, 5).join("; ")}`);
    const totals = await Promise.all(all.map(total));
    for (const [i, tt] of totals.entries()) {
      if (tt.sum !== supply) failures.push(`node ${i}: total e-CNY ${tt.sum} fen, expected ${supply}`);
      if (JSON.stringify(tt.by) !== JSON.stringify(totals[0]?.by))
        failures.push(`node ${i}: balances differ from node 0's`);
    }
    if (maxViewSeen > maxView) failures.push(`a validator reached view ${maxViewSeen} (bound ${maxView})`);
    for (const s of steps)
      if (s.recoverMs > recoverBoundMs)
        failures.push(
          `step ${s.step} (${s.fault}): first commit ${s.recoverMs} ms after the heal (bound ${recoverBoundMs})`,
        );

    const result: CheckResult = {
      seed: o.seed,
      ok: failures.length === 0,
      failures,
      steps,
      acknowledged: acks.length,
      unacknowledged,
      lost,
      height: final,
      maxViewSeen,
      longestRecoverMs: Math.max(0, ...steps.map((s) => s.recoverMs)),
      wallMs: Date.now() - started,
      reproduce,
      dir,
      network,
    };
    log(
      `seed ${o.seed}: ${result.ok ? "OK" : "FAILED"}: ${acks.length} acknowledged, ${lost.length} lost, ${unacknowledged} unacknowledged, height ${final}, max view ${maxViewSeen}, longest recovery ${result.longestRecoverMs} ms${result.ok ? "" : `\n  ${failures.join("\n  ")}\n  reproduce: ${reproduce}`}`,
    );
    return result;
  } catch (err) {
    log(`seed ${o.seed}: the check itself failed: ${errorMessage(err)}; reproduce: ${reproduce}`);
    throw err;
  } finally {
    stop = true;
    sampling = false;
    await testnet.down(dir).catch(() => {});
    if (!o.keep && !o.dir && failures.length === 0)
      await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
