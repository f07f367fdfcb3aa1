import { randomUUID } from "node:crypto";
import { isAbsolute } from "node:path";
import type { Genesis } from "@custos/types";
import { CustosError, errorMessage, type Logger } from "@custos/utils";
import { type BackupProgress, writeBackup } from "../backup/backup.js";
import type { Ledger } from "../ledger/ledger.js";
import type { SnapshotStore } from "../snapshot/store.js";
import { invalidParams, type RpcErrorName } from "./errors.js";
import type { MethodSpec } from "./methods.js";

interface BackupJob {
  id: string;
  out: string;
  state: "running" | "done" | "failed";
  progress: BackupProgress;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/**
 * Operator methods (admin scope; without API keys only from the node's own machine): backups of
 * the running node. `admin_backup({out, includeKeys?})` starts one, writing to `out` (an absolute
 * path on the node's machine that does not exist yet) and returns its id;
 * `admin_backupStatus(id)` tells its progress and, when done, its manifest.
 */
export function adminMethods(c: {
  ledger: Ledger;
  genesis: Genesis;
  home: string;
  log: Logger;
  snapshots?: SnapshotStore;
}): Record<string, MethodSpec> {
  const jobs = new Map<string, BackupJob>();
  return {
    /** Takes a state snapshot of the head now (as the interval would), and says where. */
    admin_snapshot: {
      scope: "admin",
      fn: async () => {
        if (!c.snapshots)
          throw new CustosError<RpcErrorName>("SNAPSHOT_UNAVAILABLE", "this node keeps no snapshots");
        return c.snapshots.take();
      },
    },
    /** The state snapshots this node holds and serves, newest first. */
    admin_snapshots: {
      scope: "admin",
      fn: async () => c.snapshots?.list() ?? [],
    },
    admin_backup: {
      scope: "admin",
      fn: async ([opts]) => {
        const o = (opts ?? {}) as { out?: unknown; includeKeys?: unknown };
        if (typeof o.out !== "string" || !isAbsolute(o.out) || o.out.length > 4096)
          throw invalidParams("out must be an absolute path on the node's machine");
        if (o.includeKeys !== undefined && typeof o.includeKeys !== "boolean")
          throw invalidParams("includeKeys is true or false");
        if ([...jobs.values()].some((j) => j.state === "running"))
          throw new CustosError<RpcErrorName>("BACKUP_RUNNING", "a backup is already running; wait for it", {
            retryable: true,
          });
        const job: BackupJob = {
          id: randomUUID(),
          out: o.out,
          state: "running",
          progress: { entries: 0, bytes: 0 },
        };
        jobs.set(job.id, job);
        c.log.info("backup started", { id: job.id, out: o.out, includeKeys: o.includeKeys === true });
        writeBackup(
          {
            ledger: c.ledger,
            genesis: c.genesis,
            home: c.home,
            out: o.out,
            includeKeys: o.includeKeys === true,
          },
          (p) => {
            job.progress = p;
          },
        ).then(
          (r) => {
            job.state = "done";
            job.result = r as unknown as Record<string, unknown>;
            c.log.info("backup written", { id: job.id, out: r.path, height: r.height, bytes: r.bytes });
          },
          (err) => {
            job.state = "failed";
            job.error = {
              code: (err as { code?: string }).code ?? "BACKUP_WRITE_FAILED",
              message: errorMessage(err),
            };
            c.log.error("backup failed", { id: job.id, error: errorMessage(err) });
          },
        );
        return { id: job.id };
      },
    },
    admin_backupStatus: {
      scope: "admin",
      fn: async ([id]) => {
        const job = typeof id === "string" ? jobs.get(id) : undefined;
        if (!job)
          throw new CustosError<RpcErrorName>("BACKUP_NOT_FOUND", `no backup ${String(id).slice(0, 64)}`);
        return {
          id: job.id,
          out: job.out,
          state: job.state,
          ...job.progress,
          ...(job.result ? { manifest: job.result } : {}),
          ...(job.error ? { error: job.error } : {}),
        };
      },
    },
  };
}
