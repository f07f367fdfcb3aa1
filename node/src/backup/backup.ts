import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { sm3 } from "@custos/crypto";
import type { Genesis } from "@custos/types";
import { bytesEqual, CustosError, type Logger, toHex } from "@custos/utils";
import { Level } from "level";
import { openChainLedger } from "../chain/openLedger.js";
import { homePaths } from "../config.js";
import { readGenesis } from "../home.js";
import { Ledger } from "../ledger/ledger.js";
import {
  type BackupErrorCode,
  type BackupManifest,
  BackupWriter,
  encodeEntries,
  encodeFile,
  readBackup,
  SECTION_FILE,
  SECTION_LEDGER,
} from "./format.js";

const SECTION_BYTES = 4 * 1024 * 1024;

export interface BackupProgress {
  entries: number;
  bytes: number;
}

/**
 * Writes a backup of a node (running or not) to `out`: every ledger entry as of one LevelDB
 * snapshot (block production goes on meanwhile), genesis.json and config.json, and the
 * keystores only when asked (they are encrypted with the node's password already). The
 * sign-state is not in it: a validator's record of what it signed is only true of the node it
 * was taken from at that moment (a restored validator catches up before it signs: restore).
 */
export async function writeBackup(
  o: { ledger: Ledger; genesis: Genesis; home: string; out: string; includeKeys: boolean },
  progress: (p: BackupProgress) => void = () => {},
): Promise<BackupManifest & { path: string; bytes: number }> {
  const w = await BackupWriter.create(o.out).catch((cause) => {
    throw new CustosError<BackupErrorCode>(
      "BACKUP_WRITE_FAILED",
      `cannot create ${o.out}: ${(cause as Error).message} (it must not exist yet)`,
      {},
      { cause },
    );
  });
  try {
    let chunk: [Uint8Array, Uint8Array][] = [];
    let chunkBytes = 0;
    let entries = 0;
    let sections = 0;
    let written = 0;
    let head: { height: number; hash: Uint8Array } | undefined;
    const flush = async () => {
      if (chunk.length === 0) return;
      await w.section(SECTION_LEDGER, encodeEntries(chunk));
      sections++;
      written += chunkBytes;
      chunk = [];
      chunkBytes = 0;
      progress({ entries, bytes: written });
    };
    for await (const [k, v] of o.ledger.entries()) {
      if (bytesEqual(k, Ledger.HEAD_KEY)) head = Ledger.headOf(v);
      chunk.push([k, v]);
      chunkBytes += k.byteLength + v.byteLength;
      entries++;
      if (chunkBytes >= SECTION_BYTES) await flush();
    }
    await flush();
    if (!head) throw new CustosError<BackupErrorCode>("BACKUP_WRITE_FAILED", "the ledger has no head record");
    const block = await o.ledger.getBlock(head.height);
    const genesisBlock = await o.ledger.getBlock(0);
    const files: BackupManifest["files"] = [];
    const addFile = async (path: string) => {
      const bytes = new Uint8Array(await readFile(join(o.home, path)));
      await w.section(SECTION_FILE, encodeFile(path, bytes));
      files.push({ path, sm3: `0x${toHex(sm3(bytes))}`, bytes: bytes.byteLength });
    };
    await addFile("genesis.json");
    await addFile("config.json");
    if (o.includeKeys)
      for (const f of (await readdir(join(o.home, "keys"))).filter((f) => f.endsWith(".json")).sort())
        await addFile(`keys/${f}`);
    const manifest: BackupManifest = {
      format: "custos-backup/1",
      chainId: o.genesis.chainId,
      genesisHash: `0x${toHex(genesisBlock?.hash as Uint8Array)}`,
      height: head.height,
      blockHash: `0x${toHex(head.hash)}`,
      stateRoot: `0x${toHex(block?.header.stateRoot as Uint8Array)}`,
      createdAt: new Date().toISOString(),
      entries,
      ledgerSections: sections,
      ledgerDigest: w.ledgerDigest(),
      files,
      includesKeys: o.includeKeys,
    };
    const bytes = await w.finish(manifest);
    return { ...manifest, path: o.out, bytes };
  } catch (err) {
    await w.abort();
    await rm(o.out, { force: true });
    throw err;
  }
}

/**
 * `custos restore FILE --home DIR` (the node stopped): checks the whole backup first (digests,
 * manifest; a backup of another chain than the home's genesis is refused), then writes the
 * ledger into a new directory, opens it with every check a start makes (the head block, the
 * state root over every state entry), and only then puts it in place. The node then starts at
 * the backup's height and catches up from its peers; a validator does so before it signs
 * anything (data/restored.json: its record of what it signed may be older than what it did).
 */
export async function restoreBackup(
  file: string,
  home: string,
  log: Logger,
): Promise<BackupManifest & { home: string }> {
  const backup = await readBackup(file);
  const m = backup.manifest;
  const paths = homePaths(home);
  if (existsSync(paths.genesis)) {
    const genesis = await readGenesis(paths.genesis);
    if (genesis.chainId !== m.chainId)
      throw new CustosError<BackupErrorCode>(
        "BACKUP_OTHER_CHAIN",
        `the backup is of chain ${m.chainId}, the home's genesis is of ${genesis.chainId}`,
      );
  }
  if (existsSync(paths.ledger) || existsSync(paths.ledgerMark))
    throw new CustosError<BackupErrorCode>(
      "RESTORE_REFUSED",
      `${paths.ledger} exists: restore into a home without a ledger (move it aside first, e.g. custos node reset-ledger)`,
    );
  const tmp = `${paths.ledger}.restoring`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(dirname(tmp), { recursive: true });
  const db = new Level<Uint8Array, Uint8Array>(tmp, { keyEncoding: "view", valueEncoding: "view" });
  await db.open();
  const files = new Map<string, Uint8Array>();
  try {
    await backup.replay(
      async (entries) => {
        const batch = db.batch();
        for (const [k, v] of entries) batch.put(k, v);
        await batch.write();
      },
      async (path, bytes) => {
        files.set(path, bytes);
      },
    );
  } finally {
    await db.close();
  }
  // the genesis in the backup must be the one whose block 0 the ledger holds
  const genesisBytes = files.get("genesis.json");
  if (!genesisBytes)
    throw new CustosError<BackupErrorCode>("BACKUP_INVALID", "the backup has no genesis.json");
  await mkdir(home, { recursive: true });
  if (!existsSync(paths.genesis)) await writeFile(paths.genesis, genesisBytes, { flag: "wx" });
  const genesis = await readGenesis(paths.genesis);
  const ledger = await openChainLedger(tmp, genesis, log).catch(async (err) => {
    await rm(tmp, { recursive: true, force: true });
    throw new CustosError<BackupErrorCode>(
      "BACKUP_INVALID",
      `the restored ledger does not open: ${(err as Error).message}`,
      {},
      { cause: err },
    );
  });
  const genesisHash = `0x${toHex((await ledger.getBlock(0))?.hash as Uint8Array)}`;
  const head = ledger.head;
  await ledger.close();
  if (genesisHash !== m.genesisHash || head.height !== m.height || `0x${toHex(head.hash)}` !== m.blockHash) {
    await rm(tmp, { recursive: true, force: true });
    throw new CustosError<BackupErrorCode>(
      "BACKUP_INVALID",
      "the restored ledger is not the one the manifest names",
    );
  }
  for (const [path, bytes] of files) {
    if (path === "genesis.json") continue;
    const target = join(home, path);
    if (existsSync(target)) continue; // the home's own config and keys win
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    await writeFile(target, bytes, { mode: 0o600, flag: "wx" });
  }
  await rename(tmp, paths.ledger);
  // its head record moves with it: the ledger it guards is this one now
  if (existsSync(`${tmp}.head`)) await rename(`${tmp}.head`, paths.ledgerMark);
  await writeFile(
    paths.restored,
    `${JSON.stringify({ file, height: m.height, blockHash: m.blockHash, at: new Date().toISOString() }, null, 2)}\n`,
    { mode: 0o600 },
  );
  log.info("backup restored", { height: m.height, blockHash: m.blockHash, home });
  return { ...m, home };
}
