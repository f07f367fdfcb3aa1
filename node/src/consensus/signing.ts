import { existsSync } from "node:fs";
import { rm } from "node:fs/promises";
import { decodeEnvelope, voteDigest, votePosition } from "@custos/consensus";
import { type Genesis, LIMITS } from "@custos/types";
import { CustosError, type Logger } from "@custos/utils";
import type { homePaths } from "../config.js";
import type { Ledger } from "../ledger/ledger.js";
import { FileWal } from "./fileWal.js";
import type { SigningErrorCode } from "./signState.js";
import { type LastSigned, SignState } from "./signState.js";

/**
 * A validator's consensus WAL and sign-state, checked against the ledger: the ledger may not be
 * more than one height below the last vote signed (a vote at height h needs block h - 1), except
 * after `custos node reset-ledger` on a chain with other validators to sync from.
 */
export async function openSigning(
  paths: ReturnType<typeof homePaths>,
  ledger: Ledger,
  genesis: Genesis,
  allowMissing: boolean,
  log: Logger,
): Promise<{ wal: FileWal; signState: SignState }> {
  const walExisted = existsSync(paths.wal);
  const signStateExisted = existsSync(paths.signState);
  const wal = await FileWal.open(paths.wal, log.child({ module: "wal" }));
  const records = wal.readAll();
  let signState: SignState;
  try {
    signState = await SignState.open(
      paths.signState,
      {
        ledgerHeight: ledger.head.height,
        walHasRecords: records.length > 0,
        // a restored validator holds off signing until it caught up (node.ts), which is what makes
        // starting without its old record safe
        allowMissing: allowMissing || existsSync(paths.restored),
        walVotes: ownVotes(records),
      },
      log.child({ module: "consensus" }),
    );
  } catch (err) {
    await wal.close();
    throw err;
  }
  const signedAt = signState.lastSigned.height;
  if (ledger.head.height + 1 < signedAt) {
    const reset = existsSync(paths.ledgerReset) || existsSync(paths.restored);
    const alone = ledger.head.validators.length === 1 && genesis.consensus.validators.length === 1;
    if (!reset || alone) {
      await wal.close();
      await signState.close();
      throw new CustosError<SigningErrorCode>(
        "LEDGER_BEHIND_SIGNED",
        `the ledger is at height ${ledger.head.height} but this validator signed a vote at height ${signedAt} (${paths.signState}): blocks it committed are gone. ${
          alone
            ? "A chain with one validator cannot sync them back: restore a backup of HOME/data"
            : "Run `custos node reset-ledger --home HOME` to sync the chain again from the other validators"
        }`,
        { height: ledger.head.height, signed: signedAt },
      );
    }
    log.warn("the ledger was reset: syncing from peers; no vote below the last one signed will be signed", {
      height: ledger.head.height,
      lastSigned: signState.describe(),
    });
  }
  if (existsSync(paths.ledgerReset) && ledger.head.height + 1 >= signedAt) {
    // the reset ledger has caught up with what this validator signed: back to the strict check
    await rm(paths.ledgerReset, { force: true });
  }
  if (!walExisted && signStateExisted) {
    log.warn(
      "the consensus WAL is missing: this validator's votes of the height in progress cannot be sent again; the sign-state keeps it from signing anything that conflicts with them",
      {
        path: paths.wal,
        lastSigned: signState.describe(),
      },
    );
  }
  return { wal, signState };
}

function ownVotes(records: readonly Uint8Array[]): LastSigned[] {
  const out: LastSigned[] = [];
  for (const r of records) {
    try {
      const env = decodeEnvelope(r, LIMITS.maxBlockBytes + 1024 * 1024);
      const pos = votePosition(env.body);
      if (pos) out.push({ ...pos, digest: voteDigest(env.body) });
    } catch {
      // a record this version cannot read: its height is in the ledger or the WAL's other records
    }
  }
  return out;
}
