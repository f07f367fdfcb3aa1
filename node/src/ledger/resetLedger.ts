import { existsSync } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CustosError } from "@custos/utils";
import { homePaths } from "../config.js";
import type { LedgerErrorCode } from "./errors.js";

export interface LedgerReset {
  /** Where the old ledger now is (with its head record). */
  movedTo: string;
  at: string;
}

/** Whether a process holds LevelDB's lock on `dir` (Linux /proc/locks; false where unknown). */
async function lockedByProcess(dir: string): Promise<boolean> {
  try {
    const ino = (await stat(join(dir, "LOCK"))).ino;
    const locks = await readFile("/proc/locks", "utf8");
    return locks.split("\n").some((l) => {
      const dev = l.trim().split(/\s+/)[5];
      return dev !== undefined && dev.split(":")[2] === String(ino);
    });
  } catch {
    return false;
  }
}

/**
 * `custos node reset-ledger`: moves a node's ledger (and the head record that guards it) aside,
 * keeping keys, config, the consensus WAL and the sign-state, so that the node starts from
 * genesis and syncs the chain again from its peers. The old directory is kept for analysis.
 * Refused while a node holds the ledger open.
 */
export async function resetLedger(home: string, now = new Date()): Promise<LedgerReset> {
  const paths = homePaths(home);
  if (!existsSync(paths.ledger) && !existsSync(paths.ledgerMark)) {
    throw new CustosError<LedgerErrorCode>(
      "LEDGER_MISSING",
      `there is no ledger at ${paths.ledger} to reset`,
    );
  }
  if (await lockedByProcess(paths.ledger)) {
    throw new CustosError<LedgerErrorCode>(
      "NODE_RUNNING",
      `a node has the ledger at ${paths.ledger} open: stop it first`,
    );
  }
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const movedTo = `${paths.ledger}.moved-${stamp}`;
  if (existsSync(paths.ledger)) await rename(paths.ledger, movedTo);
  else await mkdir(movedTo);
  if (existsSync(paths.ledgerMark)) await rename(paths.ledgerMark, join(movedTo, "ledger.head"));
  const reset: LedgerReset = { movedTo, at: now.toISOString() };
  await writeFile(paths.ledgerReset, `${JSON.stringify(reset, null, 2)}\n`, { mode: 0o600 });
  return reset;
}
