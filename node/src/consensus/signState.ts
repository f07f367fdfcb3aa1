import { compareVotePositions, type SignGuard, type VotePosition } from "@custos/consensus";
import { bytesEqual, CustosError, type Logger, toHex } from "@custos/utils";
import { SlotFile } from "../ledger/slotFile.js";

/** Why a validator refused to start or to sign (the sign-state, the WAL). */
export type SigningErrorCode =
  | "LEDGER_BEHIND_SIGNED"
  | "SIGN_STATE_DAMAGED"
  | "SIGN_STATE_MISSING"
  | "WAL_WRITE_FAILED";

const MAGIC = "CUSTOSSG";
const VERSION = 1;

/** The last vote this validator signed: its place in the signing order and the block it was for. */
export interface LastSigned extends VotePosition {
  digest: Uint8Array;
}

export type SignVerdict = "new" | "same" | "conflict";

function encode(s: LastSigned): Uint8Array {
  const out = new Uint8Array(1 + 8 + 4 + 1 + 32);
  const dv = new DataView(out.buffer);
  out[0] = VERSION;
  dv.setBigUint64(1, BigInt(s.height));
  dv.setUint32(9, s.view);
  out[13] = s.phase;
  out.set(s.digest, 14);
  return out;
}

function decode(b: Uint8Array): LastSigned | undefined {
  if (b.length !== 46 || b[0] !== VERSION || (b[13] as number) > 3) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    height: Number(dv.getBigUint64(1)),
    view: dv.getUint32(9),
    phase: b[13] as 0 | 1 | 2 | 3,
    digest: b.slice(14),
  };
}

export interface SignStateOpenOptions {
  /** The ledger's head height when the node starts. */
  ledgerHeight: number;
  /** Whether the consensus WAL file exists and holds records. */
  walHasRecords: boolean;
  /** The operator accepts starting without the record (`--allow-missing-sign-state`). */
  allowMissing: boolean;
  /** Positions of this validator's own votes found in the WAL (the floor when starting without a record). */
  walVotes: readonly LastSigned[];
}

/**
 * What this validator last signed (height, view, phase and body hash), in `HOME/data/sign-state`,
 * kept apart from the consensus WAL and made durable (fdatasync) before the vote leaves. A vote
 * is signed only if it comes after that one in the signing order (or is the same bytes again),
 * so a validator whose WAL was lost or damaged cannot sign a second, different vote for a round
 * it already voted in (CometBFT's priv_validator_state plays this part).
 *
 * A validator refuses to start without the record unless it is new (nothing committed, no WAL)
 * or the operator says so explicitly: a missing record means the guard's memory is gone.
 */
export class SignState implements SignGuard {
  private constructor(
    private readonly file: SlotFile,
    private last: LastSigned,
  ) {}

  static async open(path: string, o: SignStateOpenOptions, log: Logger): Promise<SignState> {
    const read = await SlotFile.read(path, MAGIC);
    if (read.state === "ok") {
      const last = decode(read.payload);
      if (last === undefined) throw damaged(path);
      return new SignState(await SlotFile.open(path, MAGIC, read.sequence), last);
    }
    const fresh = o.ledgerHeight === 0 && !o.walHasRecords;
    if (!fresh && !o.allowMissing) {
      throw read.state === "damaged"
        ? damaged(path)
        : new CustosError<SigningErrorCode>(
            "SIGN_STATE_MISSING",
            `${path} (what this validator last signed) is missing but the node has run before (ledger at height ${o.ledgerHeight}${o.walHasRecords ? ", a consensus WAL" : ""}); without it the node could sign a second, different vote for a round it already voted in. Restore the file, or if you are sure this validator signed nothing after its last WAL record, start once with --allow-missing-sign-state`,
            { path },
          );
    }
    // new, or the operator's explicit choice: the floor is what the WAL and the ledger show
    let last: LastSigned = { height: o.ledgerHeight, view: 0, phase: 0, digest: new Uint8Array(32) };
    for (const v of o.walVotes) if (compareVotePositions(v, last) > 0) last = v;
    if (!fresh)
      log.warn(
        "starting without a sign-state record (the operator allowed it, or the ledger was restored from a backup): the guard starts from the WAL and the ledger",
        {
          path,
          height: last.height,
          view: last.view,
          phase: last.phase,
        },
      );
    const file = await SlotFile.open(path, MAGIC, 0);
    const state = new SignState(file, last);
    await file.write(encode(last), true);
    return state;
  }

  get lastSigned(): LastSigned {
    return this.last;
  }

  /** Whether a vote at `pos` with body hash `digest` may be signed and sent. */
  verdict(pos: VotePosition, digest: Uint8Array): SignVerdict {
    const c = compareVotePositions(pos, this.last);
    if (c > 0) return "new";
    if (c === 0 && bytesEqual(digest, this.last.digest)) return "same";
    return "conflict";
  }

  /** The engine asks before it signs a vote: a new place advances the record (in memory). */
  admit(pos: VotePosition, digest: Uint8Array): boolean {
    const v = this.verdict(pos, digest);
    if (v === "conflict") return false;
    if (v === "new") this.last = { height: pos.height, view: pos.view, phase: pos.phase, digest };
    return true;
  }

  /** Makes an admitted vote's place durable (fdatasync); the host calls it before the vote leaves. */
  async persist(vote: VotePosition & { digest: Uint8Array }): Promise<void> {
    await this.file.write(
      encode({ height: vote.height, view: vote.view, phase: vote.phase, digest: vote.digest }),
      true,
    );
  }

  describe(): string {
    const l = this.last;
    return `height ${l.height} view ${l.view} phase ${["viewchange", "proposal", "prepare", "commit"][l.phase]} (block 0x${toHex(l.digest).slice(0, 16)}…)`;
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

function damaged(path: string): CustosError {
  return new CustosError<SigningErrorCode>(
    "SIGN_STATE_DAMAGED",
    `${path} (what this validator last signed) is damaged; restore it, or start once with --allow-missing-sign-state if you are sure this validator signed nothing after its last WAL record`,
    { path },
  );
}
