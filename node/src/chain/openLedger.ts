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
  cacheEntries?: number,
  writeBufferBytes?: number,
): Promise<Ledger> {
  const { opts, modules } = chainLedgerSpec(dir, genesis, log, cacheEntries);
  return Ledger.open(writeBufferBytes === undefined ? opts : { ...opts, writeBufferBytes }, modules);
}

/** What opening (or creating from a snapshot) a chain's ledger takes. */
export function chainLedgerSpec(
  dir: string,
  genesis: Genesis,
  log: Logger,
  cacheEntries?: number,
): { opts: LedgerOptions; modules: LedgerModules } {
  const genesisWrites: WriteSet = new Map();
  genesisMemberWrites(genesis, genesisWrites);
  return {
    opts: { dir, genesis, genesisWrites, ...(cacheEntries === undefined ? {} : { cacheEntries }) },
    modules: { log, sets: validatorSetTracker(genesis) },
  };
}
