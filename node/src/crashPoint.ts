import { writeSync } from "node:fs";

/**
 * Crash points (issue 17): `CUSTOS_CRASH_AT=<name>[:<count>]` makes the node process die by
 * SIGKILL, with no clean-up at all, the `count`-th time (default 1) it passes the named point.
 * Tests use it to crash a real node exactly where a power cut would hurt most and then check
 * what the restart makes of it. Without the variable every point is a no-op.
 *
 * The points (names are stable; tests and docs use them):
 * - `ledger.commit.beforeWrite`: a block's batch is built, nothing of it written yet;
 * - `ledger.commit.afterWrite`: the batch is durable, the head mark not yet updated;
 * - `consensus.persist.beforeSend`: a vote is in the WAL and the sign-state, not sent yet;
 * - `sync.store.midRange`: a synced range is being stored, after its first block;
 * - `audit.index.beforeWrite`: the audit index's batch for a run of blocks is built, not written.
 */
export const CRASH_POINTS = [
  "ledger.commit.beforeWrite",
  "ledger.commit.afterWrite",
  "consensus.persist.beforeSend",
  "sync.store.midRange",
  "audit.index.beforeWrite",
] as const;

export type CrashPointName = (typeof CRASH_POINTS)[number];

interface Armed {
  name: string;
  remaining: number;
}

function parse(spec: string | undefined): Armed | undefined {
  if (!spec) return undefined;
  const m = /^([a-zA-Z.]+)(?::(\d{1,9}))?$/.exec(spec.trim());
  const name = m?.[1];
  if (!m || !name || !(CRASH_POINTS as readonly string[]).includes(name)) {
    // a typo must not silently run a test without its crash
    writeSync(
      2,
      `CUSTOS_CRASH_AT=${JSON.stringify(spec)} is not <point>[:<count>] with a point of ${CRASH_POINTS.join(", ")}\n`,
    );
    process.exit(2);
  }
  return { name, remaining: Math.max(1, Number(m[2] ?? 1)) };
}

let armed: Armed | undefined | null = null;

/** Reads CUSTOS_CRASH_AT now (the node calls it at start, so that a misspelt point stops it at once). */
export function armCrashPoints(): void {
  if (armed === null) armed = parse(process.env.CUSTOS_CRASH_AT);
}

/** Dies here (SIGKILL to itself) when CUSTOS_CRASH_AT names this point and its count is reached. */
export function crashPoint(name: CrashPointName): void {
  if (armed === null) armed = parse(process.env.CUSTOS_CRASH_AT);
  if (armed === undefined || armed.name !== name) return;
  if (--armed.remaining > 0) return;
  // one line where the node's output goes, so the test (and a person) sees where it died
  writeSync(2, `CUSTOS_CRASH_AT: crashing at ${name} (pid ${process.pid})\n`);
  process.kill(process.pid, "SIGKILL");
}
