/**
 * The ledger has one writer at a time: consensus commits its decisions, block sync stores
 * certified ranges. Sync asks the writer to step aside while it stores (`exclusive`); a node
 * without consensus (an observer) has the SerialWriter, which only orders sync's own writes.
 */
/** Whoever else writes the ledger (consensus) steps aside while `fn` runs. */
export interface ChainWriter {
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

/** The writer of a node without consensus (an observer): sync alone, one range at a time. */
export class SerialWriter implements ChainWriter {
  private queue: Promise<unknown> = Promise.resolve();
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }
}
