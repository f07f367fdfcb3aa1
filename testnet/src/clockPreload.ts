/**
 * Loaded into every node process of a local testnet (`node --import .../clockPreload.js`, see
 * clock.ts): the process's clock runs at the testnet's offset, DIR/clock.json, which
 * `custos testnet clock --advance` moves forward while the nodes run. Block times, and with them
 * card terms, cooling-off periods, period accruals and daily limits, then pass days in seconds.
 * Only Date.now is shifted: timers and performance.now keep real time, so timeouts behave.
 *
 * The node's home is the process's `--home` argument; a testnet keeps its homes in DIR/NAME.
 * Each change is acknowledged in HOME/clock-ack.json, so that the command returns only once
 * every running node has taken it.
 *
 * One node's clock can also be wrong: HOME/clock-skew.json (`custos testnet clock --node N
 * --skew 5m`, a fault the checker injects) adds a signed skew to that node alone. Unlike the
 * testnet's offset it may go back, as a real clock stepped by NTP does.
 */
import { readFileSync, renameSync, watchFile, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const at = process.argv.indexOf("--home");
const homeArg = at > 0 ? process.argv[at + 1] : undefined;
if (homeArg !== undefined) {
  const home = resolve(homeArg);
  const file = join(dirname(home), "clock.json");
  const skewFile = join(home, "clock-skew.json");
  const readMs = (path: string, field: string, min: number): number => {
    try {
      const ms = Number(JSON.parse(readFileSync(path, "utf8"))[field]);
      return Number.isSafeInteger(ms) && ms >= min ? ms : 0;
    } catch {
      return 0; // no file: real time
    }
  };
  const read = () => readMs(file, "offsetMs", 0);
  const readSkew = () => readMs(skewFile, "skewMs", Number.MIN_SAFE_INTEGER);
  let offset = read();
  let skew = readSkew();
  const acknowledge = () => {
    try {
      // whole or not at all: a reader never sees it half written
      const ack = join(home, "clock-ack.json");
      writeFileSync(
        `${ack}.tmp`,
        `${JSON.stringify({ offsetMs: offset, skewMs: skew, pid: process.pid })}\n`,
      );
      renameSync(`${ack}.tmp`, ack);
    } catch {
      // a home that is not there yet: the node reports that itself
    }
  };
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + offset + skew;
  acknowledge();
  watchFile(file, { interval: 100, persistent: false }, () => {
    // never backwards within a process, even if the file is edited by hand
    offset = Math.max(offset, read());
    acknowledge();
  });
  watchFile(skewFile, { interval: 100, persistent: false }, () => {
    skew = readSkew();
    acknowledge();
  });
}
