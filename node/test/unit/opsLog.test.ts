import { EventEmitter } from "node:events";
import type { LogFields, Logger } from "@custos/utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Metrics } from "../../src/metrics.js";
import { OpsLog } from "../../src/opsLog.js";
import type { TxPool, TxPoolEvents } from "../../src/txpool/txpool.js";

function recorder(): { log: Logger; lines: { msg: string; fields: LogFields | undefined }[] } {
  const lines: { msg: string; fields: LogFields | undefined }[] = [];
  const log: Logger = {
    trace: () => {},
    debug: () => {},
    info: (msg, fields) => lines.push({ msg, fields }),
    warn: () => {},
    error: () => {},
    child: () => log,
  };
  return { log, lines };
}

describe("the operations log", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("writes a line per refusal, but one line a second for refusals because the chain is busy", async () => {
    vi.useFakeTimers({ now: Date.parse("2026-12-03T12:00:00Z") });
    const pool = new EventEmitter<TxPoolEvents>();
    const { log, lines } = recorder();
    const metrics = new Metrics({ height: () => 0, poolSize: () => 0, poolBytes: () => 0 }, "/nonexistent");
    const ops = new OpsLog(pool as unknown as TxPool, log, metrics);
    ops.start();
    const busy = { code: "TX_POOL_FULL", reason: "the chain is busy", source: "rpc" } as const;
    for (let i = 0; i < 250; i++) pool.emit("tx:rejected", busy);
    pool.emit("tx:rejected", { code: "TX_BAD_SIGNATURE", reason: "does not verify", source: "rpc" });
    // a peer's gossip is not this node's client: neither logged nor counted
    pool.emit("tx:rejected", { ...busy, source: "gossip" });
    expect(lines).toEqual([
      { msg: "tx refused", fields: { code: "TX_BAD_SIGNATURE", reason: "does not verify" } },
    ]);
    vi.advanceTimersByTime(1000);
    expect(lines[1]).toEqual({
      msg: "txs refused: the chain is busy",
      fields: { code: "TX_POOL_FULL", count: 250, since: "2026-12-03T12:00:00.000Z" },
    });
    // nothing more while nothing is refused
    vi.advanceTimersByTime(5000);
    expect(lines).toHaveLength(2);
    // the next run is counted from its own first refusal, and what is left is written at stop
    for (let i = 0; i < 3; i++) pool.emit("tx:rejected", busy);
    ops.stop();
    expect(lines[2]?.fields).toEqual({ code: "TX_POOL_FULL", count: 3, since: "2026-12-03T12:00:06.000Z" });
    pool.emit("tx:rejected", busy);
    vi.advanceTimersByTime(2000);
    expect(lines).toHaveLength(3);
    // every client refusal is in the metrics
    expect(await metrics.render()).toMatch(/custos_tx_rejected_total\{code="TX_POOL_FULL"\} 253/);
    expect(await metrics.render()).toMatch(/custos_tx_rejected_total\{code="TX_BAD_SIGNATURE"\} 1/);
  });
});
