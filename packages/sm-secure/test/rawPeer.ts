import { connect, type Socket } from "node:net";
import { type HandshakeOptions, Initiator, PROTOCOL_ID, RecordOpener, RecordSealer } from "../src/index.js";

/**
 * A peer on a bare TCP socket, for tests that misbehave on the wire the way an attacker would:
 * multistream-select by hand, then handshake and records built from the package's own parts
 * (or from garbage).
 */
export class RawConnection {
  private chunks: Buffer[] = [];
  private have = 0;
  private wake: (() => void) | undefined;
  /** Resolves when the other side has closed or reset the connection. */
  readonly closed: Promise<void>;
  ended = false;

  private constructor(readonly socket: Socket) {
    socket.on("data", (d: Buffer) => {
      this.chunks.push(d);
      this.have += d.byteLength;
      this.wake?.();
    });
    this.closed = new Promise((resolve) => {
      const end = () => {
        this.ended = true;
        this.wake?.();
        resolve();
      };
      socket.once("close", end);
      socket.once("end", end);
      socket.on("error", () => {});
    });
  }

  static open(port: number, host = "127.0.0.1"): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new RawConnection(s)));
      s.once("error", reject);
    });
  }

  write(bytes: Uint8Array): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Exactly n bytes; rejects when the connection ends first or after timeoutMs. */
  async read(n: number, timeoutMs = 10_000): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    while (this.have < n) {
      if (this.ended) throw new Error(`connection closed after ${this.have}/${n} bytes`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${n} bytes in ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          this.wake = undefined;
          resolve();
        };
      });
    }
    const all = Buffer.concat(this.chunks);
    this.chunks = [all.subarray(n)];
    this.have -= n;
    return new Uint8Array(all.subarray(0, n));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function mssMessage(line: string): Uint8Array {
  const body = Buffer.from(`${line}\n`);
  return new Uint8Array([body.byteLength, ...body]); // every line here is under 128 bytes
}

async function mssRead(c: RawConnection): Promise<string> {
  const [len] = await c.read(1);
  return Buffer.from(await c.read(len as number))
    .toString()
    .trimEnd();
}

/** multistream-select as the dialler: true when the listener speaks `protocol`. */
export async function selectProtocol(c: RawConnection, protocol = PROTOCOL_ID): Promise<boolean> {
  c.write(mssMessage("/multistream/1.0.0"));
  c.write(mssMessage(protocol));
  if ((await mssRead(c)) !== "/multistream/1.0.0") throw new Error("not a multistream-select listener");
  return (await mssRead(c)) === protocol;
}

const frame = (body: Uint8Array) => new Uint8Array([body.byteLength >> 8, body.byteLength & 0xff, ...body]);

/** A complete, honest handshake as initiator; then the records are the caller's to send. */
export async function rawHandshake(
  c: RawConnection,
  o: Omit<HandshakeOptions, "authorize"> & { authorize?: HandshakeOptions["authorize"] },
): Promise<{ sealer: RecordSealer; opener: RecordOpener }> {
  const i = new Initiator({ authorize: () => {}, ...o });
  c.write(frame(i.hello()));
  const [h0, h1] = await c.read(2);
  const reply = await c.read(((h0 as number) << 8) | (h1 as number));
  const { message, result } = i.finish(reply);
  c.write(frame(message));
  return { sealer: new RecordSealer(result.sendSecret), opener: new RecordOpener(result.recvSecret) };
}

export { frame as handshakeFrame, mssMessage };
