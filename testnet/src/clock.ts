import { existsSync, readFileSync } from "node:fs";
import { readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CustosError, sleep } from "@custos/utils";
import { pick, readTestnet, status } from "./testnet.js";

/**
 * A testnet's clock. Its node processes run with clockPreload.js, which shifts their Date.now by
 * the offset in DIR/clock.json; `advanceClock` moves it forward on every node at once, so the
 * chain's block time jumps ahead: what a prepaid card does over days and weeks (cooling-off
 * ending, period accrual, expiry, a closing date) can be tried in seconds. The offset only grows
 * (block times must move forward) and survives restarts; `custos testnet clock` shows it.
 */

/** The preload, compiled next to this module's package (dist/), also when this runs from src/. */
const PRELOAD = fileURLToPath(new URL("../dist/clockPreload.js", import.meta.url));

/** Node arguments that put a node process on its testnet's clock (for UpOptions.command). */
export function clockNodeArgs(): string[] {
  if (!existsSync(PRELOAD))
    throw new CustosError("TESTNET_NOT_BUILT", `${PRELOAD} is missing: run npm run build`);
  return ["--import", pathToFileURL(PRELOAD).href];
}

export interface TestnetClock {
  offsetMs: number;
  /** The testnet's time now (ms since the epoch). */
  now: number;
}

const clockFile = (dir: string) => join(resolve(dir), "clock.json");

export function readClock(dir: string): TestnetClock {
  let offsetMs = 0;
  try {
    offsetMs = Number(JSON.parse(readFileSync(clockFile(dir), "utf8")).offsetMs) || 0;
  } catch {
    // no clock file: real time
  }
  return { offsetMs, now: Date.now() + offsetMs };
}

/** A signed duration: "-30s", "+5m", "0" (see parseDuration). */
export function parseSignedDuration(text: string): number {
  const t = text.trim();
  if (t === "0") return 0;
  const sign = t.startsWith("-") ? -1 : 1;
  return sign * parseDuration(t.replace(/^[+-]/, ""));
}

/**
 * Sets one node's clock wrong by `skewMs` (negative: behind), on top of the testnet's clock; 0
 * puts it right again. Waits until the node, if it runs, took it. The fault a validator with a
 * broken NTP is: its proposals carry its time (consensus.maxClockDriftMs refuses them when too far
 * ahead) and its own checks of others' times use it.
 */
export async function skewClock(
  dir: string,
  which: string | number,
  skewMs: number,
  o: { timeoutMs?: number } = {},
): Promise<{ name: string; skewMs: number }> {
  if (!Number.isSafeInteger(skewMs)) throw new CustosError("USAGE", "the skew is a whole number of ms");
  const t = await readTestnet(resolve(dir));
  if (!t.command.some((a) => a.endsWith("clockPreload.js")))
    throw new CustosError(
      "TESTNET_NO_CLOCK",
      `the nodes of ${dir} run without the testnet clock (a testnet created by an older custos): create it again to use the clock`,
    );
  const { node, index } = pick(t, which);
  const file = join(node.home, "clock-skew.json");
  await writeFile(`${file}.tmp`, `${JSON.stringify({ skewMs })}\n`);
  await rename(`${file}.tmp`, file);
  if ((await status(dir)).find((n) => n.index === index)?.state === "running") {
    const deadline = Date.now() + (o.timeoutMs ?? 10_000);
    for (;;) {
      const ack = await readFile(join(node.home, "clock-ack.json"), "utf8").then(
        (x) => JSON.parse(x) as { skewMs?: number },
        () => ({}) as { skewMs?: number },
      );
      if ((ack.skewMs ?? 0) === skewMs) break;
      if (Date.now() > deadline)
        throw new CustosError("TESTNET_TIMEOUT", `${node.name} did not take the skew in time`);
      await sleep(50);
    }
  }
  return { name: node.name, skewMs };
}

/** "8d", "12h", "30m", "45s" (or combinations: "1d12h") in ms. */
export function parseDuration(text: string): number {
  const m = /^(?:(\d{1,5})d)?(?:(\d{1,6})h)?(?:(\d{1,7})m)?(?:(\d{1,9})s)?$/.exec(text.trim());
  if (!m || text.trim() === "")
    throw new CustosError(
      "USAGE",
      `a duration is like 8d, 12h, 30m, 45s or 1d12h, not ${JSON.stringify(text)}`,
    );
  const [d, h, min, s] = [m[1], m[2], m[3], m[4]].map((x) => Number(x ?? 0)) as [
    number,
    number,
    number,
    number,
  ];
  return ((d * 24 + h) * 60 + min) * 60_000 + s * 1000;
}

/**
 * Moves the testnet's clock forward by `byMs` and returns once every running node has taken the
 * new offset (each acknowledges it in HOME/clock-ack.json); stopped or paused nodes take it when
 * they run again. The next block carries the new time.
 */
export async function advanceClock(
  dir: string,
  byMs: number,
  o: { timeoutMs?: number } = {},
): Promise<TestnetClock> {
  if (!Number.isSafeInteger(byMs) || byMs <= 0)
    throw new CustosError("USAGE", "the clock only moves forward: give a positive duration");
  const t = await readTestnet(resolve(dir));
  if (!t.command.some((a) => a.endsWith("clockPreload.js")))
    throw new CustosError(
      "TESTNET_NO_CLOCK",
      `the nodes of ${dir} run without the testnet clock (a testnet created by an older custos): create it again to use the clock`,
    );
  const offsetMs = readClock(dir).offsetMs + byMs;
  const tmp = `${clockFile(dir)}.tmp`;
  await writeFile(tmp, `${JSON.stringify({ offsetMs })}\n`);
  await rename(tmp, clockFile(dir));
  const running = (await status(dir)).filter((n) => n.state === "running");
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  for (const n of running) {
    const home = t.nodes[n.index]?.home as string;
    for (;;) {
      // the node replaces the file whole (write, then rename); not there yet: not acknowledged
      const ack = await readFile(join(home, "clock-ack.json"), "utf8").then(
        (x) => JSON.parse(x) as { offsetMs?: number },
        () => ({}) as { offsetMs?: number },
      );
      if ((ack.offsetMs ?? 0) >= offsetMs) break;
      if (Date.now() > deadline)
        throw new CustosError("TESTNET_TIMEOUT", `${n.name} did not take the new clock in time`);
      await sleep(50);
    }
  }
  return { offsetMs, now: Date.now() + offsetMs };
}
