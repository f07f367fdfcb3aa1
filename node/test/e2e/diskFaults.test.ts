import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cp, mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { CustosClient, Wallet } from "@custos/client";
import { loadKeystoreFile } from "@custos/crypto";
import { afterAll, describe, expect, it } from "vitest";
import { initHome } from "../../src/index.js";
import { tempDir } from "../helpers.js";

/**
 * Disk faults (issue 17) on a real node process: a damaged WAL, a read-only data directory and a
 * full disk each end in a loud refusal with the cause or in a repair that is reported, never in
 * a silent rollback. The read-only and full-disk cases mount a filesystem (root; skipped with a
 * note otherwise).
 */
const BIN = fileURLToPath(new URL("../../../cli/bin/custos.js", import.meta.url));
const procs: ChildProcess[] = [];
const mounts: string[] = [];
afterAll(() => {
  for (const p of procs) p.kill("SIGKILL");
  for (const m of mounts.reverse()) spawnSync("umount", ["-l", m]);
});

const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  return spawnSync("mount", ["--version"]).status === 0;
})();

function mount(args: string[]): void {
  const r = spawnSync("mount", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mount ${args.join(" ")}: ${r.stderr}`);
  mounts.push(args[args.length - 1] as string);
}

interface Started {
  proc: ChildProcess;
  url: string;
  stderr: () => string;
}

async function startNode(home: string): Promise<Started> {
  const proc = spawn(
    process.execPath,
    [BIN, "node", "start", "--home", home, "--rpc-listen", "127.0.0.1:0", "--json"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  procs.push(proc);
  let out = "";
  let err = "";
  proc.stderr?.on("data", (d) => {
    err += String(d);
  });
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout?.on("data", (d) => {
      out += String(d);
      const m = /"rpc":\s*"([^"]+)"/.exec(out);
      if (m) resolve(m[1] as string);
    });
    proc.once("exit", (code) => reject(new Error(`node exited with ${code}: ${err}`)));
  });
  return { proc, url, stderr: () => err };
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((res) => proc.once("exit", (code) => res(code)));
}

/** Starts the node and expects a refusal: exit 1 with its cause and code on stderr. */
async function refusal(home: string): Promise<string> {
  const proc = spawn(
    process.execPath,
    [BIN, "node", "start", "--home", home, "--rpc-listen", "127.0.0.1:0"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  procs.push(proc);
  let err = "";
  proc.stderr?.on("data", (d) => {
    err += String(d);
  });
  expect(await exited(proc)).toBe(1);
  return err.trim();
}

/** A one-validator dev chain with `blocks` blocks, stopped; its operator's wallet for more. */
async function devChain(blocks: number) {
  const t = await tempDir("custos-disk-");
  const r = await initHome({ home: t.dir, dev: true, kdfIterations: 1000 });
  const password = (await readFile(join(t.dir, "dev-password"), "utf8")).trim();
  const account = (name: string) =>
    r.accounts?.find((a) => a.name === name) as { keyFile: string; address: string };
  const operator = await loadKeystoreFile(account("operator").keyFile, password);
  const merchant = account("merchant-1").address;
  const node = await startNode(t.dir);
  const wallet = new Wallet(new CustosClient(node.url), operator);
  for (let i = 0; i < blocks; i++)
    await wallet.send({ to: "ecny", method: "issue", args: [merchant, 1n, `rc-${i}`] });
  node.proc.kill("SIGTERM");
  expect(await exited(node.proc)).toBe(0);
  return { t, operator, merchant };
}

// nothing here depends on the SM2 backend: npm test's second pass (the pure-JS backend) skips it
describe.skipIf(process.env.CUSTOS_SM2_BACKEND === "js")("disk faults", () => {
  it("a consensus WAL whose last record is damaged: the record is dropped and the repair reported at warn level; the height stays", async () => {
    const { t } = await devChain(3);
    try {
      const wal = join(t.dir, "data", "consensus.wal");
      const bytes = await readFile(wal);
      expect(bytes.length).toBeGreaterThan(8);
      bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
      await writeFile(wal, bytes);
      const node = await startNode(t.dir);
      expect((await new CustosClient(node.url).status()).height).toBe(3);
      node.proc.kill("SIGTERM");
      await exited(node.proc);
      const log = await readFile(join(t.dir, "logs", "node.log"), "utf8");
      expect(log).toMatch(/"level":"warn".*consensus WAL had a torn tail; dropped/);
    } finally {
      await t.cleanup();
    }
  }, 60_000);

  it.skipIf(!canMount)(
    "a read-only data directory: the node refuses to start and says which file it could not write",
    async () => {
      const { t } = await devChain(2);
      try {
        const data = join(t.dir, "data");
        mount(["--bind", data, data]);
        mount(["-o", "remount,bind,ro", data]);
        const err = await refusal(t.dir);
        expect(err).toMatch(/read-only|EROFS/i);
        expect(err).toMatch(/\([A-Z_]+\)$/); // a stable code
        spawnSync("umount", [data]);
        mounts.pop();
        // nothing was lost: writable again, it starts at its height
        const node = await startNode(t.dir);
        expect((await new CustosClient(node.url).status()).height).toBe(2);
        node.proc.kill("SIGTERM");
        await exited(node.proc);
      } finally {
        await t.cleanup();
      }
    },
    60_000,
  );

  it.skipIf(!canMount)(
    "a full disk while committing: the node stops loudly with the cause; with space again it starts at a height with every acknowledged block",
    async () => {
      const { t, operator, merchant } = await devChain(2);
      try {
        // the data directory moves onto a small filesystem of its own
        const data = join(t.dir, "data");
        const saved = join(t.dir, "data.saved");
        await cp(data, saved, { recursive: true });
        await rm(data, { recursive: true, force: true });
        await mkdir(data);
        mount(["-t", "tmpfs", "-o", "size=24m", "tmpfs", data]);
        await cp(saved, data, { recursive: true });
        const node = await startNode(t.dir);
        const wallet = new Wallet(new CustosClient(node.url), operator);
        let acked = 2;
        const r = await wallet.send({ to: "ecny", method: "issue", args: [merchant, 1n, "full-0"] });
        acked = r.view?.blockHeight ?? acked;
        // fill what is left of it
        const filler = join(data, "filler");
        const chunk = Buffer.alloc(1024 * 1024, 1);
        for (let i = 0; i < 64; i++) {
          try {
            await writeFile(filler, chunk, { flag: "a" });
          } catch {
            break;
          }
        }
        for (let k = 0; k < 4096; k++) {
          try {
            await writeFile(filler, Buffer.alloc(512, 1), { flag: "a" });
          } catch {
            break;
          }
        }
        // blocks go on only while the last pages of the ledger's files have room (a filesystem
        // allocates whole pages); then the next block cannot be written: the node must stop
        let sent: number | undefined;
        const alive = () => node.proc.exitCode === null && node.proc.signalCode === null;
        for (let k = 0; k < 40 && alive(); k++) {
          const h = await wallet
            .send(
              { to: "ecny", method: "issue", args: [merchant, 1n, `full-${k + 1}`] },
              { timeoutMs: 10_000 },
            )
            .then((x) => x.view?.blockHeight)
            .catch(() => undefined);
          if (h !== undefined) acked = sent = h;
        }
        const code = await Promise.race([
          exited(node.proc),
          new Promise<string>((res) => setTimeout(() => res("still running"), 30_000)),
        ]);
        const nodeLog = await readFile(join(t.dir, "logs", "node.log"), "utf8").catch(() => "");
        expect(
          code,
          `${node.stderr()}\n${nodeLog.split("\n").slice(-15).join("\n")}\nsent: ${sent}`,
        ).not.toBe("still running");
        expect(code).not.toBe(0);
        expect(node.stderr()).toMatch(/the node stopped: .*ENOSPC/);
        expect(node.stderr()).toMatch(/NODE_FATAL/);
        expect(await readFile(join(t.dir, "logs", "node.log"), "utf8")).toMatch(
          /"level":"error".*(WAL|LEDGER)_WRITE_FAILED.*ENOSPC: no space left on device.*the node stops: a fault it cannot recover from/,
        );
        // space again: it starts with every block it acknowledged
        await rm(filler);
        expect((await stat(data)).isDirectory()).toBe(true);
        const again = await startNode(t.dir);
        const c = new CustosClient(again.url);
        expect((await c.status()).height).toBeGreaterThanOrEqual(acked);
        const more = await new Wallet(c, operator).send({
          to: "ecny",
          method: "issue",
          args: [merchant, 1n, "full-after"],
        });
        expect(more.receipt?.success).toBe(true);
        again.proc.kill("SIGTERM");
        await exited(again.proc);
      } finally {
        spawnSync("umount", ["-l", join(t.dir, "data")]);
        await t.cleanup();
      }
    },
    90_000,
  );
});
