import { type FileHandle, open } from "node:fs/promises";
import { decode, encode, fieldAt, readArray, readBytes, readString } from "@custos/codec";
import { sm3 } from "@custos/crypto";
import { bytesEqual, CustosError, toHex } from "@custos/utils";

/**
 * The backup file (`custos backup`): a consistent copy of a node's ledger and the files it needs
 * to start again, each piece with its SM3 digest, so that a damaged or truncated copy is refused
 * before anything is written.
 *
 *   "CUSTOSBK" | version (u8)
 *   sections, each: type (u8) | length (u32 BE) | payload | SM3(type || payload)
 *     1 ledger: msgpack [[key, value], ...] (LevelDB entries in key order, at most ~4 MiB a section)
 *     2 file:   msgpack [relative path, bytes] (genesis.json, config.json, keys when asked)
 *     3 manifest (last): JSON (BackupManifest), whose ledgerDigest is the SM3 over the ledger
 *       sections' digests in order and files lists each file's SM3
 *   "CUSTOSEND" | SM3 of every byte before it
 */
const MAGIC = new TextEncoder().encode("CUSTOSBK");
const END = new TextEncoder().encode("CUSTOSEND");
const VERSION = 1;
export const SECTION_LEDGER = 1;
export const SECTION_FILE = 2;
export const SECTION_MANIFEST = 3;
const MAX_SECTION = 64 * 1024 * 1024;

export type BackupErrorCode =
  | "BACKUP_INVALID"
  | "BACKUP_OTHER_CHAIN"
  | "BACKUP_WRITE_FAILED"
  | "RESTORE_REFUSED";

export interface BackupManifest {
  format: "custos-backup/1";
  chainId: string;
  /** 0x SM3 of the genesis block's header. */
  genesisHash: string;
  height: number;
  blockHash: string;
  stateRoot: string;
  createdAt: string;
  entries: number;
  ledgerSections: number;
  ledgerDigest: string;
  files: { path: string; sm3: string; bytes: number }[];
  includesKeys: boolean;
}

function invalid(message: string): CustosError<BackupErrorCode> {
  return new CustosError<BackupErrorCode>("BACKUP_INVALID", `the backup is not usable: ${message}`);
}

/** Writes sections one after the other, with the running digest of the whole file. */
export class BackupWriter {
  private readonly whole: Uint8Array[] = [];
  private size = 0;
  private ledgerDigests: Uint8Array[] = [];

  private constructor(private readonly fh: FileHandle) {}

  static async create(path: string): Promise<BackupWriter> {
    const fh = await open(path, "wx", 0o600);
    const w = new BackupWriter(fh);
    await w.raw(Uint8Array.from([...MAGIC, VERSION]));
    return w;
  }

  private async raw(bytes: Uint8Array): Promise<void> {
    await this.fh.write(bytes);
    // the file digest is taken over digests of what was written, chunk by chunk (no second pass)
    this.whole.push(sm3(bytes));
    this.size += bytes.byteLength;
  }

  async section(type: number, payload: Uint8Array): Promise<Uint8Array> {
    if (payload.byteLength > MAX_SECTION) throw new Error("backup section too large");
    const head = new Uint8Array(5);
    head[0] = type;
    new DataView(head.buffer).setUint32(1, payload.byteLength);
    const digest = sm3(Uint8Array.of(type), payload);
    await this.raw(head);
    await this.raw(payload);
    await this.raw(digest);
    if (type === SECTION_LEDGER) this.ledgerDigests.push(digest);
    return digest;
  }

  ledgerDigest(): string {
    return `0x${toHex(sm3(...this.ledgerDigests))}`;
  }

  async finish(manifest: BackupManifest): Promise<number> {
    await this.section(SECTION_MANIFEST, new TextEncoder().encode(JSON.stringify(manifest)));
    await this.raw(END);
    await this.fh.write(sm3(...this.whole));
    await this.fh.sync();
    await this.fh.close();
    return this.size + 32;
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
  }
}

export interface ReadBackup {
  manifest: BackupManifest;
  /** Calls `onLedger` for each ledger section's entries and `onFile` for each file, in order. */
  replay(
    onLedger: (entries: [Uint8Array, Uint8Array][]) => Promise<void>,
    onFile: (path: string, bytes: Uint8Array) => Promise<void>,
  ): Promise<void>;
}

const SAFE_PATH = /^(genesis\.json|config\.json|keys\/[A-Za-z0-9._-]{1,64}\.json|data\/sign-state)$/;

/**
 * Reads and checks a whole backup file first (every section's digest, the file's digest, the
 * manifest against the sections): a flipped byte anywhere or a truncated file is refused with
 * the reason, and nothing has been written. `replay` then hands out its contents.
 */
export async function readBackup(path: string): Promise<ReadBackup> {
  const fh = await open(path, "r").catch((cause) => {
    throw new CustosError<BackupErrorCode>("BACKUP_INVALID", `cannot read the backup ${path}`, {}, { cause });
  });
  try {
    const size = (await fh.stat()).size;
    if (size < MAGIC.length + 1 + END.length + 32)
      throw invalid("the file is too short to be a backup (truncated?)");
    const head = new Uint8Array(MAGIC.length + 1);
    await fh.read(head, 0, head.length, 0);
    if (!bytesEqual(head.subarray(0, MAGIC.length), MAGIC)) throw invalid("not a Custos backup file");
    if (head[MAGIC.length] !== VERSION)
      throw invalid(`backup format version ${head[MAGIC.length]} is not known`);
    const whole: Uint8Array[] = [sm3(head)];
    const sections: { type: number; offset: number; length: number }[] = [];
    let pos = head.length;
    let manifestBytes: Uint8Array | undefined;
    const ledgerDigests: Uint8Array[] = [];
    const fileDigests = new Map<string, { sm3: string; bytes: number }>();
    while (pos < size - END.length - 32) {
      const h = new Uint8Array(5);
      if ((await fh.read(h, 0, 5, pos)).bytesRead < 5) throw invalid(`truncated at byte ${pos}`);
      const type = h[0] as number;
      const length = new DataView(h.buffer).getUint32(1);
      if (length > MAX_SECTION || pos + 5 + length + 32 > size - END.length - 32)
        throw invalid(`section at byte ${pos} runs past the end (truncated?)`);
      const payload = new Uint8Array(length);
      await fh.read(payload, 0, length, pos + 5);
      const digest = new Uint8Array(32);
      await fh.read(digest, 0, 32, pos + 5 + length);
      if (!bytesEqual(digest, sm3(Uint8Array.of(type), payload)))
        throw invalid(
          `section at byte ${pos} (type ${type}) does not match its SM3 digest: the file is damaged`,
        );
      whole.push(sm3(h), sm3(payload), sm3(digest));
      if (type === SECTION_LEDGER) ledgerDigests.push(digest);
      else if (type === SECTION_FILE) {
        const [p, bytes] = fileOf(payload);
        fileDigests.set(p, { sm3: `0x${toHex(sm3(bytes))}`, bytes: bytes.byteLength });
      } else if (type === SECTION_MANIFEST) {
        if (manifestBytes) throw invalid("two manifests");
        manifestBytes = payload;
      } else throw invalid(`unknown section type ${type} at byte ${pos}`);
      sections.push({ type, offset: pos + 5, length });
      pos += 5 + length + 32;
    }
    const end = new Uint8Array(END.length + 32);
    await fh.read(end, 0, end.length, pos);
    if (!bytesEqual(end.subarray(0, END.length), END)) throw invalid("no end marker (truncated?)");
    whole.push(sm3(end.subarray(0, END.length)));
    if (!bytesEqual(end.subarray(END.length), sm3(...whole)))
      throw invalid("the file's digest does not match");
    if (!manifestBytes || sections[sections.length - 1]?.type !== SECTION_MANIFEST)
      throw invalid("no manifest at the end");
    let manifest: BackupManifest;
    try {
      manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as BackupManifest;
    } catch {
      throw invalid("the manifest is not JSON");
    }
    if (manifest.format !== "custos-backup/1") throw invalid(`unknown manifest format ${manifest.format}`);
    if (manifest.ledgerSections !== ledgerDigests.length)
      throw invalid(
        `the manifest names ${manifest.ledgerSections} ledger sections, the file has ${ledgerDigests.length}`,
      );
    if (manifest.ledgerDigest !== `0x${toHex(sm3(...ledgerDigests))}`)
      throw invalid("the ledger sections are not the ones the manifest names");
    for (const f of manifest.files) {
      const got = fileDigests.get(f.path);
      if (!got || got.sm3 !== f.sm3) throw invalid(`file ${f.path} is not the one the manifest names`);
    }
    if (fileDigests.size !== manifest.files.length) throw invalid("a file the manifest does not name");
    return {
      manifest,
      async replay(onLedger, onFile) {
        const again = await open(path, "r");
        try {
          for (const s of sections) {
            const payload = new Uint8Array(s.length);
            await again.read(payload, 0, s.length, s.offset);
            if (s.type === SECTION_LEDGER) await onLedger(entriesOf(payload));
            else if (s.type === SECTION_FILE) {
              const [p, bytes] = fileOf(payload);
              await onFile(p, bytes);
            }
          }
        } finally {
          await again.close();
        }
      },
    };
  } finally {
    await fh.close();
  }
}

export function encodeEntries(entries: [Uint8Array, Uint8Array][]): Uint8Array {
  return encode(entries);
}

function entriesOf(payload: Uint8Array): [Uint8Array, Uint8Array][] {
  const S = "BackupLedger";
  return readArray(decode(payload, S, MAX_SECTION), fieldAt(S, "")).map((e, i) => {
    const a = readArray(e, fieldAt(S, `[${i}]`), 2);
    return [readBytes(a[0], fieldAt(S, `[${i}].key`)), readBytes(a[1], fieldAt(S, `[${i}].value`))];
  });
}

export function encodeFile(path: string, bytes: Uint8Array): Uint8Array {
  return encode([path, bytes]);
}

function fileOf(payload: Uint8Array): [string, Uint8Array] {
  const S = "BackupFile";
  const a = readArray(decode(payload, S, MAX_SECTION), fieldAt(S, ""), 2);
  const p = readString(a[0], fieldAt(S, "path"), { max: 128 });
  if (!SAFE_PATH.test(p)) throw invalid(`a file with an unexpected path ${JSON.stringify(p)}`);
  return [p, readBytes(a[1], fieldAt(S, "bytes"), { max: MAX_SECTION })];
}
