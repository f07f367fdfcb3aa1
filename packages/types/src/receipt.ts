import {
  assertCanonical,
  decode,
  encode,
  fieldAt,
  merkleRoot,
  readArray,
  readBool,
  readBytes,
  readNullable,
  readString,
  readU64,
  readVersion,
} from "@custos/codec";
import { eventSubjects, MAX_TOPICS, SUBJECT_RE } from "./auditChain.js";
import { ERROR_CODE_RE, EVENT_NAME_RE, LIMITS, TARGET_RE } from "./limits.js";

/** Version 2: events carry their topics and the audit chain heads (auditChain.ts). */
export const RECEIPT_VERSION = 2;

export interface ContractEvent {
  /** The contract (address or system contract name) that emitted it. */
  emitter: string;
  name: string;
  /** msgpack-encoded payload. */
  data: Uint8Array;
  /** What the event is about besides its emitter (addresses, `card:12`...): at most 4. */
  topics: string[];
  /** The audit chain head of each of its subjects after it (eventSubjects order). */
  heads: Uint8Array[];
}

/**
 * The outcome of one transaction. On the wire: [version, txHash, success, gasUsed, output,
 * events, errorCode, errorMessage]. A failed transaction has its writes reverted, no events, and
 * a stable error code.
 */
export interface Receipt {
  version: typeof RECEIPT_VERSION;
  txHash: Uint8Array;
  success: boolean;
  gasUsed: bigint;
  output: Uint8Array;
  events: ContractEvent[];
  errorCode: string | null;
  errorMessage: string | null;
}

export function encodeReceipt(r: Receipt): Uint8Array {
  return encode([
    r.version,
    r.txHash,
    r.success,
    r.gasUsed,
    r.output,
    r.events.map((e) => [e.emitter, e.name, e.data, e.topics, e.heads]),
    r.errorCode,
    r.errorMessage,
  ]);
}

export function decodeReceipt(bytes: Uint8Array): Receipt {
  const S = "Receipt";
  const a = readArray(decode(bytes, S, LIMITS.maxReceiptBytes), fieldAt(S, ""), 8);
  const events = readArray(a[5], fieldAt(S, "events"), { min: 0, max: LIMITS.maxEventsPerReceipt }).map(
    (ev, i) => {
      const f = `events[${i}]`;
      const e = readArray(ev, fieldAt(S, f), 5);
      const event = {
        emitter: readString(e[0], fieldAt(S, `${f}.emitter`), { max: 42, pattern: TARGET_RE }),
        name: readString(e[1], fieldAt(S, `${f}.name`), { max: 64, pattern: EVENT_NAME_RE }),
        data: readBytes(e[2], fieldAt(S, `${f}.data`), { max: LIMITS.maxEventDataBytes }),
        topics: readArray(e[3], fieldAt(S, `${f}.topics`), { min: 0, max: MAX_TOPICS }).map((t, k) =>
          readString(t, fieldAt(S, `${f}.topics[${k}]`), { max: 80, pattern: SUBJECT_RE }),
        ),
        heads: [] as Uint8Array[],
      };
      const subjects = eventSubjects(event).length;
      event.heads = readArray(e[4], fieldAt(S, `${f}.heads`), subjects).map((h, k) =>
        readBytes(h, fieldAt(S, `${f}.heads[${k}]`), 32),
      );
      return event;
    },
  );
  const r: Receipt = {
    version: readVersion(a[0], fieldAt(S, "version"), [RECEIPT_VERSION]) as typeof RECEIPT_VERSION,
    txHash: readBytes(a[1], fieldAt(S, "txHash"), 32),
    success: readBool(a[2], fieldAt(S, "success")),
    gasUsed: readU64(a[3], fieldAt(S, "gasUsed")),
    output: readBytes(a[4], fieldAt(S, "output"), { max: LIMITS.maxReceiptBytes }),
    events,
    errorCode: readNullable(a[6], (v) =>
      readString(v, fieldAt(S, "errorCode"), { max: 64, pattern: ERROR_CODE_RE }),
    ),
    errorMessage: readNullable(a[7], (v) =>
      readString(v, fieldAt(S, "errorMessage"), { max: LIMITS.maxErrorMessageLength }),
    ),
  };
  assertCanonical(bytes, encodeReceipt(r), S);
  return r;
}

/** receiptRoot: Merkle root over the encoded receipts, in block order. */
export function computeReceiptRoot(receiptBytes: readonly Uint8Array[]): Uint8Array {
  return merkleRoot(receiptBytes);
}
