import { CustosClient } from "@custos/client";
import type { Command } from "commander";
import { output } from "../io.js";
import { runningRpc } from "../target.js";

interface Taken {
  height: number;
  file: string;
  entries: number;
  chunks: number;
  bytes: number;
}

interface Held {
  height: number;
  file: string;
  entries: number;
  chunks: number;
  blockHash: string;
}

/**
 * `custos snapshot create|list --home DIR`: state snapshots (what a new node starts from with
 * `custos node start --from-snapshot`). A running node takes and lists them itself (admin RPC);
 * a stopped node's ledger is read directly.
 */
export function registerSnapshotCommands(program: Command): void {
  const snap = program
    .command("snapshot")
    .description(
      "state snapshots a node takes (config snapshots.interval) and serves to nodes that join from one",
    );
  snap
    .command("create")
    .description("take a state snapshot of a node's head now (running or stopped) into HOME/data/snapshots")
    .requiredOption("--home <dir>", "the node's home directory")
    .option("--json", "print the result as one JSON document")
    .action(async (o: { home: string; json?: boolean }) => {
      const url = runningRpc(o.home);
      let r: Taken;
      if (url) r = await new CustosClient(url).request<Taken>("admin_snapshot", []);
      else r = await withStore(o.home, (store) => store.take());
      output(
        !!o.json,
        r as unknown as Record<string, unknown>,
        `snapshot at height ${r.height}: ${r.entries} state entries in ${r.chunks} chunks, ${(r.bytes / 1048576).toFixed(1)} MiB\n${r.file}`,
      );
    });
  snap
    .command("list")
    .description("the snapshots a node holds and serves, newest first")
    .requiredOption("--home <dir>", "the node's home directory")
    .option("--json", "print the list as one JSON document")
    .action(async (o: { home: string; json?: boolean }) => {
      const url = runningRpc(o.home);
      const list = url
        ? await new CustosClient(url).request<Held[]>("admin_snapshots", [])
        : await withStore(o.home, async (store) => store.list());
      output(
        !!o.json,
        { snapshots: list },
        list.length === 0
          ? "no snapshots"
          : list.map((s) => `${s.height}  ${s.blockHash}  ${s.entries} entries  ${s.file}`).join("\n"),
      );
    });
}

async function withStore<T>(
  home: string,
  fn: (store: import("@custos/node").SnapshotStore) => Promise<T>,
): Promise<T> {
  const { openChainLedger, readGenesis, homePaths, loadConfig, SnapshotStore } = await import("@custos/node");
  const { nullLogger } = await import("@custos/utils");
  const paths = homePaths(home);
  const genesis = await readGenesis(paths.genesis);
  const config = await loadConfig(home);
  const ledger = await openChainLedger(paths.ledger, genesis, nullLogger);
  try {
    const store = await new SnapshotStore(
      paths.snapshots,
      config.snapshots,
      ledger,
      genesis.chainId,
      nullLogger,
    ).open();
    return await fn(store);
  } finally {
    await ledger.close();
  }
}
