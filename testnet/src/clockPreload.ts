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
 */
import { readFileSync, renameSync, watchFile, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const at = process.argv.indexOf("--home");
const homeArg = at > 0 ? process.argv[at + 1] : undefined;
if (homeArg !== undefined) {
  const home = resolve(homeArg);
  const file = join(dirname(home), "clock.json");
  const read = (): number => {
    try {
      const offset = Number(JSON.parse(readFileSync(file, "utf8")).offsetMs);
      return Number.isSafeInteger(offset) && offset >= 0 ? offset : 0;
    } catch {
      return 0; // no clock file: real time
    }
  };
  let offset = read();
  const acknowledge = () => {
    try {
      // whole or not at all: a reader never sees it half written
      const ack = join(home, "clock-ack.json");
      writeFileSync(`${ack}.tmp`, `${JSON.stringify({ offsetMs: offset, pid: process.pid })}\n`);
      renameSync(`${ack}.tmp`, ack);
    } catch {
      // a home that is not there yet: the node reports that itself
    }
  };
  const realNow = Date.now.bind(Date);
  Date.now = () => realNow() + offset;
  acknowledge();
  watchFile(file, { interval: 100, persistent: false }, () => {
    // never backwards within a process, even if the file is edited by hand
    offset = Math.max(offset, read());
    acknowledge();
  });
}
