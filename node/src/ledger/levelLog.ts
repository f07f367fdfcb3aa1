import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { crc32c } from "@custos/utils";

/**
 * A check of LevelDB's own log files before LevelDB opens them.
 *
 * Why: LevelDB recovers its write-ahead log (`NNNNNN.log`) at open. With `paranoid_checks` off
 * (its default, and classic-level 3 exposes neither that option nor `verify_checksums`), a record
 * whose checksum does not match is dropped with a line in LevelDB's `LOG` file, recovery goes on,
 * the surviving records are flushed to a table and the log is deleted: the ledger opens some
 * blocks back, silently, and the evidence is gone. So the node reads the logs itself first, with
 * the format LevelDB documents (doc/log_format.md), and refuses to open a ledger whose log has a
 * damaged record anywhere but in a torn tail (a write the process died in, which was never
 * acknowledged: blocks are written with sync). The MANIFEST uses the same framing.
 *
 * Format: 32 KiB blocks; each physical record is a 7-byte header (masked CRC-32C of type and
 * data, little-endian u32; length, little-endian u16; type: 1 full, 2 first, 3 middle, 4 last)
 * and its data; fewer than 7 bytes left in a block are a zero trailer. A logical record of the
 * write-ahead log is a write batch: sequence (u64), count (u32), then `count` entries (tag 1:
 * key and value, tag 0: key; each a varint32 length and bytes).
 */

const BLOCK = 32 * 1024;
const HEADER = 7;
const MASK_DELTA = 0xa282ead8;

export interface LogDamage {
  file: string;
  /** Byte offset of the damaged physical record. */
  offset: number;
  reason: string;
}

function unmask(masked: number): number {
  const rot = (masked - MASK_DELTA) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

function readVarint32(b: Uint8Array, pos: number): [number, number] | undefined {
  let result = 0;
  for (let shift = 0; shift <= 28 && pos < b.length; shift += 7) {
    const byte = b[pos++] as number;
    result |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result >>> 0, pos];
  }
  return undefined;
}

/** Why a write-ahead-log record is not a well-formed write batch, or undefined when it is. */
function batchProblem(r: Uint8Array): string | undefined {
  if (r.length < 12) return "log record too small";
  const count = new DataView(r.buffer, r.byteOffset, r.byteLength).getUint32(8, true);
  let pos = 12;
  for (let i = 0; i < count; i++) {
    const tag = r[pos++];
    if (tag !== 0 && tag !== 1) return `write batch entry ${i} has unknown tag ${tag}`;
    for (let part = 0; part < (tag === 1 ? 2 : 1); part++) {
      const v = readVarint32(r, pos);
      if (v === undefined || v[1] + v[0] > r.length) return `write batch entry ${i} runs past the record`;
      pos = v[1] + v[0];
    }
  }
  if (pos !== r.length) return "write batch has bytes after its entries";
  return undefined;
}

/**
 * Damaged records of one file in LevelDB's log format. A record cut off by the end of the file
 * is a torn tail and not damage; everything else that LevelDB's reader would drop is.
 */
export function logDamage(file: string, bytes: Uint8Array, batches: boolean): LogDamage[] {
  const out: LogDamage[] = [];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fragments: Uint8Array[] | undefined;
  let fragmentStart = 0;
  const logical = (offset: number, record: Uint8Array) => {
    const why = batches ? batchProblem(record) : undefined;
    if (why) out.push({ file, offset, reason: why });
  };
  for (let block = 0; block < bytes.length; block += BLOCK) {
    const end = Math.min(bytes.length, block + BLOCK);
    let pos = block;
    while (end - pos >= HEADER) {
      const length = dv.getUint16(pos + 4, true);
      const type = bytes[pos + 6] as number;
      if (pos + HEADER + length > end) {
        // past the block: damage, unless this is the file's last block (a torn tail)
        const tornTail = end === bytes.length && bytes.length % BLOCK !== 0;
        if (!tornTail) out.push({ file, offset: pos, reason: "bad record length" });
        break;
      }
      if (type === 0 && length === 0) break; // preallocated zeros: the rest of the block is empty
      const data = bytes.subarray(pos + HEADER, pos + HEADER + length);
      const expected = unmask(dv.getUint32(pos, true));
      const actual = crc32c(data, crc32c(bytes.subarray(pos + 6, pos + 7)));
      if (actual !== expected) {
        out.push({ file, offset: pos, reason: "checksum mismatch" });
        fragments = undefined;
        break; // LevelDB drops the rest of the block
      }
      switch (type) {
        case 1:
          if (fragments) out.push({ file, offset: fragmentStart, reason: "partial record without end" });
          fragments = undefined;
          logical(pos, data);
          break;
        case 2:
          if (fragments) out.push({ file, offset: fragmentStart, reason: "partial record without end" });
          fragments = [data];
          fragmentStart = pos;
          break;
        case 3:
          if (fragments) fragments.push(data);
          else out.push({ file, offset: pos, reason: "missing start of fragmented record" });
          break;
        case 4:
          if (fragments) {
            fragments.push(data);
            logical(fragmentStart, Buffer.concat(fragments));
            fragments = undefined;
          } else out.push({ file, offset: pos, reason: "missing start of fragmented record" });
          break;
        default:
          out.push({ file, offset: pos, reason: `unknown record type ${type}` });
          fragments = undefined;
      }
      pos += HEADER + length;
    }
  }
  // a fragmented record still open at the end of the file is a torn tail
  return out;
}

/**
 * Checks the write-ahead logs and the current MANIFEST of the LevelDB database in `dir` (nothing
 * there: a new ledger, nothing to check). Reads only.
 */
export async function checkLevelLogs(dir: string): Promise<LogDamage[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const damage: LogDamage[] = [];
  let manifest: string | undefined;
  if (names.includes("CURRENT")) {
    manifest = (await readFile(join(dir, "CURRENT"), "latin1")).trim();
    if (!/^MANIFEST-\d+$/.test(manifest) || !names.includes(manifest)) {
      damage.push({
        file: "CURRENT",
        offset: 0,
        reason: `names a missing or invalid manifest "${manifest}"`,
      });
      manifest = undefined;
    }
  }
  for (const name of names.sort()) {
    const isLog = /^\d+\.log$/.test(name);
    if (!isLog && name !== manifest) continue;
    const bytes = new Uint8Array(await readFile(join(dir, name)));
    damage.push(...logDamage(name, bytes, isLog));
  }
  return damage;
}

/**
 * Lines of LevelDB's info log (`LOG`, rewritten at every open) that report records dropped or
 * corruption found during this open: a last line of defence behind `checkLevelLogs`.
 */
export async function levelDbComplaints(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(dir, "LOG"), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter((l) => /corruption|dropping|checksum/i.test(l))
    .map((l) => l.trim());
}
