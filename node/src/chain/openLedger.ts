import type { Genesis, WriteSet } from "@custos/types";
import type { Logger } from "@custos/utils";
import { Ledger, type LedgerModules, type LedgerOptions } from "../ledger/ledger.js";
import { genesisMemberWrites } from "../system/members.js";
import { validatorSetTracker } from "../system/validators.js";

/**
 * The ledger of a chain as a node keeps it: genesis state from the system contracts (the member
 * registry), the validator and observer sets tracked by the validators contract.
 */
export function openChainLedger(
  dir: string,
  genesis: Genesis,
  log: Logger,
  tuning: Pick<LedgerOptions, "cacheEntries" | "writeBufferBytes"> = {},
): Promise<Ledger> {
  const { opts, modules } = chainLedgerSpec(dir, genesis, log);
  return Ledger.open({ ...opts, ...tuning }, modules);
}

/** What opening (or creating from a snapshot) a chain's ledger takes. */
export function chainLedgerSpec(
  dir: string,
  genesis: Genesis,
  log: Logger,
): { opts: LedgerOptions; modules: LedgerModules } {
  const genesisWrites: WriteSet = new Map();
  genesisMemberWrites(genesis, genesisWrites);
  return {
    opts: { dir, genesis, genesisWrites },
    modules: { log, sets: validatorSetTracker(genesis) },
  };
}
