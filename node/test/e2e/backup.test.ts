import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cp, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile } from "@custos/crypto";
import { nullLogger, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { openChainLedger } from "../../src/chain/openLedger.js";
import { initHome, readGenesis, restoreBackup } from "../../src/index.js";
import { tempDir } from "../helpers.js";

const BIN = fileURLToPath(new URL("../../../cli/bin/custos.js", import.meta.url));
const procs: ChildProcess[] = [];
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
});

function custos(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, ...env } });
}

/** The CLI as a process of its own, without blocking the test's event loop. */
function custosAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => {
      stdout += d;
    });
    p.stderr.on("data", (d) => {
      stderr += d;
    });
    p.on("error", fail);
    p.on("close", (status) => done({ status, stdout, stderr }));
  });
}

async function startNode(home: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(
    process.execPath,
    [BIN, "node", "start", "--home", home, "--rpc-listen", "127.0.0.1:0", "--json"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  procs.push(proc);
  let out = "";
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout?.on("data", (d) => {
      out += String(d);
      const m = /"rpc":\s*"([^"]+)"/.exec(out);
      if (m) resolve(m[1] as string);
    });
    proc.once("exit", (code) => reject(new Error(`node exited with ${code}`)));
  });
  return { proc, url };
}

describe("backup and restore", () => {
  it("a backup of a running node under load restores into a home whose ledger has every block and the same state", async () => {
    const t = await tempDir("custos-backup-");
    try {
      const home = join(t.dir, "h");
      const r = await initHome({ home, dev: true, kdfIterations: 1000 });
      const password = (await readFile(join(home, "dev-password"), "utf8")).trim();
      const operator = await loadKeystoreFile(
        r.accounts?.find((a) => a.name === "operator")?.keyFile as string,
        password,
      );
      const target = r.accounts?.find((a) => a.name === "merchant-1")?.address as string;
      const node = await startNode(home);
      const wallet = new Wallet(new CustosClient(node.url), operator);
      for (let i = 0; i < 5; i++)
        await wallet.send({ to: "ecny", method: "issue", args: [target, 1n, `before-${i}`] });
      // load keeps going while the backup runs: it sees one consistent moment
      let stop = false;
      let n = 0;
      const load = (async () => {
        while (!stop && n < 2000)
          await wallet.send({ to: "ecny", method: "issue", args: [target, 1n, `during-${n++}`] });
      })();
      const out = join(t.dir, "node.bak");
      // its own process, not a blocking spawn: the load goes on while the backup is written
      const nBefore = n;
      const b = await custosAsync(["backup", "--home", home, "--out", out, "--json"]);
      const issuedDuring = n - nBefore;
      stop = true;
      await load;
      expect(b.status, b.stderr).toBe(0);
      expect(issuedDuring).toBeGreaterThan(0);
      const manifest = JSON.parse(b.stdout);
      expect(manifest).toMatchObject({ chainId: "custos-dev", includesKeys: false });
      expect(manifest.height).toBeGreaterThanOrEqual(5);
      node.proc.kill("SIGTERM");
      await new Promise((res) => node.proc.once("exit", res));

      // a new home with only the node's key and password: restore, then open what it wrote
      const fresh = join(t.dir, "fresh");
      await cp(join(home, "keys"), join(fresh, "keys"), { recursive: true });
      const restored = await restoreBackup(out, fresh, nullLogger);
      expect(restored.height).toBe(manifest.height);
      const genesis = await readGenesis(join(fresh, "genesis.json"));
      const a = await openChainLedger(join(fresh, "data", "ledger"), genesis, nullLogger);
      const original = await openChainLedger(join(home, "data", "ledger"), genesis, nullLogger);
      try {
        expect(a.head.height).toBe(manifest.height);
        for (let h = 0; h <= manifest.height; h++)
          expect(toHex((await a.getBlock(h))?.hash as Uint8Array)).toBe(
            toHex((await original.getBlock(h))?.hash as Uint8Array),
          );
        // the state root over every restored state entry is the one the head block certifies (checked at open)
        expect(toHex(a.head.header.stateRoot)).toBe(manifest.stateRoot.slice(2));
      } finally {
        await a.close();
        await original.close();
      }

      // a damaged copy, a truncated one, another chain and a home with a ledger are refused
      const bytes = await readFile(out);
      const flipped = Buffer.from(bytes);
      flipped[Math.floor(flipped.length / 2)] = (flipped[Math.floor(flipped.length / 2)] as number) ^ 1;
      await writeFile(join(t.dir, "flipped.bak"), flipped);
      await expect(
        restoreBackup(join(t.dir, "flipped.bak"), join(t.dir, "x"), nullLogger),
      ).rejects.toMatchObject({
        code: "BACKUP_INVALID",
        message: /digest/,
      });
      await writeFile(join(t.dir, "short.bak"), bytes);
      await truncate(join(t.dir, "short.bak"), bytes.length - 100);
      await expect(
        restoreBackup(join(t.dir, "short.bak"), join(t.dir, "y"), nullLogger),
      ).rejects.toMatchObject({
        code: "BACKUP_INVALID",
      });
      await expect(restoreBackup(out, fresh, nullLogger)).rejects.toMatchObject({ code: "RESTORE_REFUSED" });
      const other = join(t.dir, "other");
      await initHome({ home: other, dev: true, kdfIterations: 1000, chainId: "another-chain" });
      const refused = custos(["restore", out, "--home", other]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(/BACKUP_OTHER_CHAIN/);
    } finally {
      await t.cleanup();
    }
  }, 120_000);
});
