import type { CustosError } from "@custos/utils";
import type { AbortOptions, MessageStream, StreamCloseEvent, StreamMessageEvent } from "@libp2p/interface";
import { AbstractMessageStream, type SendResult } from "@libp2p/utils";
import { isSmSecureError, refusal, type SmSecureErrorCode } from "./errors.js";
import type { ByteSource, RecordOpener, RecordSealer } from "./record.js";

function bytesOf(data: { subarray(): Uint8Array } | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

export interface StreamHooks {
  /** A record was refused (the connection is aborted right after). */
  refused(err: CustosError<SmSecureErrorCode>): void;
  /** Key updates this connection sent or received, as they happen. */
  keyUpdated(direction: "send" | "recv", count: number): void;
}

/**
 * The secured connection handed to libp2p: what it sends is sealed into records on the
 * underlying connection, what arrives is opened record by record. The first bad record aborts
 * the connection (the peer gets a reset) and is reported; nothing else is affected.
 */
export class SecureStream extends AbstractMessageStream {
  private readonly onInnerMessage = (evt: StreamMessageEvent) => this.receive(bytesOf(evt.data));
  private readonly onInnerClose = (evt: StreamCloseEvent) => {
    this.opener.wipe();
    this.sealer.wipe();
    if (evt.error != null) {
      if (evt.local === true) this.abort(evt.error);
      else this.onRemoteReset();
    } else this.onTransportClosed();
  };
  private readonly onInnerDrain = () => this.safeDispatchEvent("drain");
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
    const updates = this.sealer.updates;
    const sealed = this.sealer.seal(data);
    if (this.sealer.updates !== updates) this.hooks.keyUpdated("send", this.sealer.updates - updates);
    return { sentBytes: data.byteLength, canSendMore: this.inner.send(sealed) };
  }

  override sendReset(err: Error): void {
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
    await this.inner.close(options);
  }
}
