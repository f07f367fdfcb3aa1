import type { CustosError } from "@custos/utils";
import type { AbortOptions, MessageStream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { AbstractMessageStream, type SendResult } from "@libp2p/utils";
import { isSmSecureError, refusal, type SmSecureErrorCode } from "./errors.js";
import { type ByteSource, MAX_RECORD_PLAINTEXT, type RecordOpener, type RecordSealer } from "./record.js";

function bytesOf(data: { subarray(): Uint8Array } | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

export interface StreamHooks {
  /** A record was refused (the connection is aborted right after). */
  refused(err: CustosError<SmSecureErrorCode>): void;
  /** Key updates this connection sent or received, as they happen. */
  keyUpdated(direction: "send" | "recv", count: number): void;
}

/** Plaintext held for one send at most: four full records. */
const MAX_HELD = 4 * MAX_RECORD_PLAINTEXT;

class Held {
  chunks: Uint8Array[] = [];
  bytes = 0;
  take(): Uint8Array {
    const out =
      this.chunks.length === 1 ? (this.chunks[0] as Uint8Array) : Buffer.concat(this.chunks, this.bytes);
    this.chunks = [];
    this.bytes = 0;
    return out;
  }
}

/**
 * The secured connection handed to libp2p: what it sends is sealed into records on the
 * underlying connection, what arrives is opened record by record. The first bad record aborts
 * the connection (the peer gets a reset) and is reported; nothing else is affected.
 *
 * What the muxer sends in one go goes out together: the frames (a message's header and body,
 * window updates, other streams' frames) are held until a microtask queued with the first of
 * them runs, or until MAX_HELD bytes, and are sealed as one run of records in one write. yamux
 * answers every data frame with a window update, and each frame was a record (SM4 + HMAC) and a
 * socket write of its own. A microtask, not the event loop's next turn: a vote must not wait
 * behind a block's execution (flushed at setImmediate, seven validators on two cores fell into
 * view change after view change). Order is kept: everything goes through one buffer.
 */
export class SecureStream extends AbstractMessageStream {
  private readonly held = new Held();
  private flushScheduled = false;
  /** The last send to the connection said it is full; cleared by its drain. */
  private innerFull = false;
  private readonly flushHeld = () => {
    this.flushScheduled = false;
    try {
      this.flush();
    } catch (err) {
      // what sendData would have thrown to its caller (a connection closed meanwhile)
      this.abort(err instanceof Error ? err : new Error(String(err)));
    }
  };
  private readonly onInnerMessage = (evt: StreamMessageEvent) => this.receive(bytesOf(evt.data));
  private readonly onInnerClose = (evt: StreamCloseEvent) => {
    this.held.take();
    this.opener.wipe();
    this.sealer.wipe();
    if (evt.error != null) {
      if (evt.local === true) this.abort(evt.error);
      else this.onRemoteReset();
    } else this.onTransportClosed();
  };
  private readonly onInnerDrain = () => {
    this.innerFull = false;
    this.safeDispatchEvent("drain");
  };
  private readonly onInnerRemoteCloseWrite = () => {
    if (this.opener.pending > 0) {
      this.fail(
        refusal(
          "SM_RECORD_TRUNCATED",
          `the peer stopped sending inside a record (${this.opener.pending} bytes)`,
        ),
      );
      return;
    }
    this.onRemoteCloseWrite();
  };

  constructor(
    private readonly inner: MessageStream,
    private readonly sealer: RecordSealer,
    private readonly opener: RecordOpener,
    leftover: Uint8Array,
    private readonly hooks: StreamHooks,
  ) {
    super({
      log: inner.log.newScope("sm-secure"),
      inactivityTimeout: inner.inactivityTimeout,
      maxReadBufferLength: inner.maxReadBufferLength,
      direction: inner.direction,
    });
    inner.addEventListener("message", this.onInnerMessage);
    inner.addEventListener("close", this.onInnerClose);
    inner.addEventListener("drain", this.onInnerDrain);
    inner.addEventListener("remoteCloseWrite", this.onInnerRemoteCloseWrite);
    if (leftover.byteLength > 0) this.receive(leftover);
  }

  private receive(bytes: Uint8Array): void {
    if (this.status !== "open" && this.status !== "closing") return;
    let plaintexts: Uint8Array[];
    const updates = this.opener.updates;
    try {
      plaintexts = this.opener.open(bytes);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (this.opener.updates !== updates) this.hooks.keyUpdated("recv", this.opener.updates - updates);
    for (const p of plaintexts) this.onData(p);
  }

  private fail(err: unknown): void {
    const e = isSmSecureError(err)
      ? err
      : refusal("SM_RECORD_MAC", `a record could not be opened: ${String(err)}`);
    this.hooks.refused(e);
    this.abort(e);
  }

  override sendData(data: ByteSource): SendResult {
    // a copy: the caller's buffer list is consumed after this returns
    this.held.chunks.push(new Uint8Array(data.subarray()));
    this.held.bytes += data.byteLength;
    if (this.held.bytes >= MAX_HELD) return { sentBytes: data.byteLength, canSendMore: this.flush() };
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushHeld);
    }
    return { sentBytes: data.byteLength, canSendMore: !this.innerFull };
  }

  /** Seals what is held and sends it; false when the connection asks to wait for its drain. */
  private flush(): boolean {
    if (this.held.bytes === 0) return !this.innerFull;
    if (this.status !== "open" && this.status !== "closing") {
      this.held.take();
      return false;
    }
    const updates = this.sealer.updates;
    const sealed = this.sealer.seal(this.held.take());
    if (this.sealer.updates !== updates) this.hooks.keyUpdated("send", this.sealer.updates - updates);
    this.innerFull = !this.inner.send(sealed);
    return !this.innerFull;
  }

  override sendReset(err: Error): void {
    this.held.take();
    this.opener.wipe();
    this.sealer.wipe();
    this.inner.abort(err);
  }

  override sendPause(): void {
    this.inner.pause();
  }

  override sendResume(): void {
    this.inner.resume();
  }

  override async close(options?: AbortOptions): Promise<void> {
    this.flush();
    await this.inner.close(options);
  }
}
