import type { MessageStream } from "@libp2p/interface";
import { refusal } from "./errors.js";
import { HANDSHAKE_MAX_BODY } from "./handshake.js";

/** What a peer may have sent ahead of where the handshake is before it is refused. */
const MAX_BUFFERED = 64 * 1024;

function bytesOf(data: { subarray(): Uint8Array } | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? data : data.subarray();
}

/**
 * Handshake messages over a libp2p message stream: each is u16 (big-endian) length || body, the
 * body at most HANDSHAKE_MAX_BODY bytes. Reads end with a refusal when the peer announces more,
 * floods, closes, or takes longer than the signal allows. `detach()` hands back whatever the
 * peer sent after the last message (the first records) and stops listening.
 */
export class HandshakeChannel {
  private chunks: Uint8Array[] = [];
  private have = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  private flooded = false;

  private readonly onMessage = (evt: { data: { subarray(): Uint8Array } | Uint8Array }) => {
    const b = bytesOf(evt.data);
    if (b.byteLength === 0) return;
    this.chunks.push(b);
    this.have += b.byteLength;
    if (this.have > MAX_BUFFERED) this.flooded = true;
    this.wake?.();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.wake?.();
  };

  constructor(private readonly stream: MessageStream) {
    stream.addEventListener("message", this.onMessage);
    stream.addEventListener("close", this.onEnd);
    stream.addEventListener("remoteCloseWrite", this.onEnd);
  }

  /** Sends one handshake message. */
  async write(body: Uint8Array, signal: AbortSignal): Promise<void> {
    const frame = new Uint8Array(2 + body.byteLength);
    frame[0] = body.byteLength >> 8;
    frame[1] = body.byteLength & 0xff;
    frame.set(body, 2);
    if (!this.stream.send(frame)) await this.stream.onDrain({ signal });
  }

  /** Reads one handshake message body. */
  async read(signal: AbortSignal): Promise<Uint8Array> {
    await this.fill(2, signal);
    const h = this.take(2);
    const length = ((h[0] as number) << 8) | (h[1] as number);
    if (length > HANDSHAKE_MAX_BODY)
      throw refusal(
        "SM_HANDSHAKE_TOO_LARGE",
        `a handshake message of ${length} bytes (limit ${HANDSHAKE_MAX_BODY})`,
        {
          length,
        },
      );
    if (length === 0) throw refusal("SM_HANDSHAKE_MALFORMED", "an empty handshake message");
    await this.fill(length, signal);
    return this.take(length);
  }

  /** Stops listening; returns the bytes received after the last message read. */
  detach(): Uint8Array {
    this.stream.removeEventListener("message", this.onMessage);
    this.stream.removeEventListener("close", this.onEnd);
    this.stream.removeEventListener("remoteCloseWrite", this.onEnd);
    const rest = this.have > 0 ? this.take(this.have) : new Uint8Array(0);
    this.chunks = [];
    return rest;
  }

  private async fill(n: number, signal: AbortSignal): Promise<void> {
    while (this.have < n) {
      if (this.flooded)
        throw refusal(
          "SM_HANDSHAKE_TOO_LARGE",
          `the peer sent over ${MAX_BUFFERED} bytes during the handshake`,
        );
      if (this.ended)
        throw refusal("SM_HANDSHAKE_CLOSED", "the peer closed the connection during the handshake");
      if (signal.aborted)
        throw refusal("SM_HANDSHAKE_TIMEOUT", "the handshake did not complete in time", {
          reason: String(signal.reason),
        });
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener("abort", done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done);
      });
    }
    if (this.flooded)
      throw refusal(
        "SM_HANDSHAKE_TOO_LARGE",
        `the peer sent over ${MAX_BUFFERED} bytes during the handshake`,
      );
  }

  private take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0] as Uint8Array;
      const k = Math.min(c.byteLength, n - at);
      out.set(c.subarray(0, k), at);
      at += k;
      if (k === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.have -= n;
    return out;
  }
}
