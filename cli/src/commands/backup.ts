import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { CustosClient } from "@custos/client";
import { CustosError, sleep } from "@custos/utils";
import type { Command } from "commander";
import { output } from "../io.js";
import { runningRpc } from "../target.js";

interface BackupStatus {
  state: "running" | "done" | "failed";
  entries: number;
  bytes: number;
  manifest?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/**
 * `custos backup --home DIR --out FILE`: a running node writes the backup itself (a LevelDB
 * snapshot, so it keeps producing blocks meanwhile) through its admin RPC, and this command
 * shows the progress; a stopped node's ledger is read directly. `custos restore FILE --home DIR`
 * checks the whole backup before it writes anything.
 */
export function registerBackupCommands(program: Command): void {
  program
    .command("backup")
    .description(
      "write a consistent backup of a node (running or stopped): its ledger, genesis and config, with a manifest",
    )
    .requiredOption("--home <dir>", "the node's home directory")
    .requiredOption("--out <file>", "the backup file to write (must not exist)")
    .option("--include-keys", "also the keystores (encrypted with the node key's password)")
    .option("--json", "print the manifest as one JSON document")
    .action(async (o: { home: string; out: string; includeKeys?: boolean; json?: boolean }) => {
      const out = resolve(o.out);
      if (existsSync(out))
        throw new CustosError("BACKUP_WRITE_FAILED", `${out} exists: a backup never overwrites a file`);
      const url = runningRpc(o.home);
      let manifest: Record<string, unknown>;
      if (url) {
        const c = new CustosClient(url);
        const { id } = await c.request<{ id: string }>("admin_backup", [
          { out, includeKeys: o.includeKeys === true },
        ]);
        let last = -1;
        for (;;) {
          const s = await c.request<BackupStatus>("admin_backupStatus", [id]);
          if (!o.json && s.entries !== last) {
            process.stderr.write(
              `backup: ${s.entries} ledger entries, ${(s.bytes / 1048576).toFixed(1)} MiB\n`,
            );
            last = s.entries;
          }
          if (s.state === "done") {
            manifest = s.manifest as Record<string, unknown>;
            break;
          }
          if (s.state === "failed")
            throw new CustosError(
              s.error?.code ?? "BACKUP_WRITE_FAILED",
              s.error?.message ?? "the backup failed",
            );
          await sleep(200);
        }
      } else {
        const { openChainLedger, readGenesis, homePaths, writeBackup } = await import("@custos/node");
        const paths = homePaths(o.home);
        const genesis = await readGenesis(paths.genesis);
        const { nullLogger } = await import("@custos/utils");
        const ledger = await openChainLedger(paths.ledger, genesis, nullLogger);
        try {
          manifest = (await writeBackup(
            { ledger, genesis, home: o.home, out, includeKeys: o.includeKeys === true },
            (p) => {
              if (!o.json) process.stderr.write(`backup: ${p.entries} ledger entries\n`);
            },
          )) as unknown as Record<string, unknown>;
        } finally {
          await ledger.close();
        }
      }
      output(
        !!o.json,
        manifest,
        `backup of ${manifest.chainId} at height ${manifest.height} (${manifest.blockHash}) in ${out}\n${manifest.entries} ledger entries, ${(manifest.files as unknown[]).length} files${manifest.includesKeys ? " (keystores included, encrypted)" : ""}`,
      );
    });

  program
    .command("restore")
    .description(
      "restore a backup into a home without a ledger (the node stopped); checks every digest first",
    )
    .argument("<file>", "the backup file")
    .requiredOption("--home <dir>", "the node's home directory")
    .option("--json", "print the manifest as one JSON document")
    .action(async (file: string, o: { home: string; json?: boolean }) => {
      if (runningRpc(o.home))
        throw new CustosError("NODE_RUNNING", `the node of ${o.home} is running: stop it first`);
      const { restoreBackup } = await import("@custos/node");
      const { nullLogger } = await import("@custos/utils");
      const m = await restoreBackup(resolve(file), o.home, nullLogger);
      output(
        !!o.json,
        m as unknown as Record<string, unknown>,
        `restored ${m.chainId} at height ${m.height} (${m.blockHash}) into ${o.home}\nstart the node: it catches up from its peers (a validator signs nothing until it has)`,
      );
    });
}
