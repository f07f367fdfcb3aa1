import type { Genesis, WriteSet } from "@custos/types";
import type { Logger } from "@custos/utils";
import { Ledger } from "../ledger/ledger.js";
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
): Promise<Ledger> {
  const genesisWrites: WriteSet = new Map();
  genesisMemberWrites(genesis, genesisWrites);
  return Ledger.open(
    { dir, genesis, genesisWrites, ...(cacheEntries === undefined ? {} : { cacheEntries }) },
    { log, sets: validatorSetTracker(genesis) },
  );
}
