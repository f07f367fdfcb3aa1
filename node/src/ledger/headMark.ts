import { existsSync } from "node:fs";
import { join } from "node:path";
import { bytesEqual, CustosError, toHex } from "@custos/utils";
import type { LedgerErrorCode } from "./errors.js";
import { checkLevelLogs, levelDbComplaints } from "./levelLog.js";
import { SlotFile } from "./slotFile.js";

const MAGIC = "CUSTOSHD";

export const RECOVERY =
  "Keep the directory for analysis. To recover: `custos node reset-ledger --home HOME` moves it aside and the node syncs the chain again from its peers (a validator keeps its sign-state, so it cannot sign twice); a chain with one validator can only be restored from a backup";

export interface MarkedHead {
  height: number;
  hash: Uint8Array;
}

function encodeMark(m: MarkedHead): Uint8Array {
  const out = new Uint8Array(40);
  new DataView(out.buffer).setBigUint64(0, BigInt(m.height));
  out.set(m.hash, 8);
  return out;
}

/**
 * What this node committed last, kept beside the ledger (`LEDGER.head`) so that the ledger can
 * never open below it: not LevelDB (which drops damaged log records at open and carries on), but
 * an independent record. Written after every commit without a sync of its own (the ledger's
 * batch is synced first, so the mark can only lag the ledger, never lead it), synced at close.
 *
 * Before LevelDB opens the directory, `HeadMark.check` refuses a missing ledger or a damaged
 * LevelDB log (LevelDB would recover by dropping the records and deleting the log); after it
 * opened, `verify` refuses what LevelDB itself reported in its LOG and a head below the mark or
 * beside it (another block at the marked height).
 */
export class HeadMark {
  private constructor(
    private readonly dir: string,
    private readonly marked: MarkedHead | undefined,
    private readonly sequence: number,
    private file: SlotFile | undefined,
  ) {}

  static async check(dir: string): Promise<HeadMark> {
    const path = `${dir}.head`;
    const read = await SlotFile.read(path, MAGIC);
    if (read.state === "damaged")
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_CORRUPT",
        `${path} (the head this node committed last) is damaged, so the ledger cannot be checked against it. ${RECOVERY}`,
        { dir },
      );
    const marked =
      read.state === "ok" && read.payload.length === 40
        ? {
            height: Number(new DataView(read.payload.buffer, read.payload.byteOffset).getBigUint64(0)),
            hash: read.payload.slice(8),
          }
        : undefined;
    if (marked !== undefined && marked.height > 0 && !existsSync(join(dir, "CURRENT"))) {
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_ROLLED_BACK",
        `the ledger at ${dir} is missing, but this node had committed height ${marked.height} (0x${toHex(marked.hash)}, recorded in ${path}). ${RECOVERY}`,
        { dir, committed: marked.height },
      );
    }
    const damage = await checkLevelLogs(dir);
    if (damage.length > 0) {
      const where = damage
        .slice(0, 3)
        .map((d) => `${d.file} at byte ${d.offset}: ${d.reason}`)
        .join("; ");
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_CORRUPT",
        `the ledger at ${dir} is damaged (${where}${damage.length > 3 ? `; ${damage.length - 3} more` : ""}): opening it would silently lose committed blocks, so the node refuses to start. ${RECOVERY}`,
        { dir, damage: damage.slice(0, 10) },
      );
    }
    return new HeadMark(dir, marked, read.state === "ok" ? read.sequence : 0, undefined);
  }

  /**
   * After LevelDB opened: nothing it reported, and `head` at or above the mark with the marked
   * block where it was. `hashAt` reads a stored block's hash.
   */
  async verify(head: MarkedHead, hashAt: (height: number) => Promise<Uint8Array | undefined>): Promise<void> {
    const complaints = await levelDbComplaints(this.dir);
    if (complaints.length > 0)
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_CORRUPT",
        `LevelDB reported damage while opening the ledger at ${this.dir}: ${complaints.slice(0, 3).join(" | ")}. ${RECOVERY}`,
        { dir: this.dir, complaints: complaints.slice(0, 10) },
      );
    const m = this.marked;
    if (m === undefined) return;
    if (m.height > head.height)
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_ROLLED_BACK",
        `the ledger at ${this.dir} opened at height ${head.height}, but this node had committed height ${m.height} (0x${toHex(m.hash)}): committed blocks are missing (damaged or replaced files), and going on would fork the chain, so the node refuses to start. ${RECOVERY}`,
        { dir: this.dir, height: head.height, committed: m.height },
      );
    const stored = await hashAt(m.height);
    if (stored === undefined || !bytesEqual(stored, m.hash))
      throw new CustosError<LedgerErrorCode>(
        "LEDGER_CORRUPT",
        `the ledger at ${this.dir} holds ${stored ? `another block (0x${toHex(stored)})` : "no block"} at height ${m.height}, where this node committed 0x${toHex(m.hash)}. ${RECOVERY}`,
        { dir: this.dir, height: m.height },
      );
  }

  /** Starts recording from `head` on (written and synced now if the mark is behind it). */
  async open(head: MarkedHead): Promise<void> {
    this.file = await SlotFile.open(`${this.dir}.head`, MAGIC, this.sequence);
    if (this.marked === undefined || this.marked.height !== head.height)
      await this.file.write(encodeMark(head), true);
  }

  /** Records a committed head (not synced: it may lag the ledger after a crash, never lead it). */
  async record(head: MarkedHead): Promise<void> {
    await this.file?.write(encodeMark(head), false);
  }

  async close(): Promise<void> {
    if (!this.file) return;
    await this.file.sync().catch(() => {});
    await this.file.close();
    this.file = undefined;
  }
}
