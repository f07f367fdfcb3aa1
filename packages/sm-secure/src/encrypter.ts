import { type CustosError, errorMessage } from "@custos/utils";
import type {
  ComponentLogger,
  ConnectionEncrypter,
  MessageStream,
  SecureConnectionOptions,
  SecuredConnection,
} from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { HandshakeChannel } from "./channel.js";
import { isSmSecureError, refusal, type SmSecureErrorCode } from "./errors.js";
import { type HandshakeResult, Initiator, Responder, type StaticIdentity } from "./handshake.js";
import { PROTOCOL_ID } from "./keySchedule.js";
import { RecordOpener, RecordSealer, type RekeyLimits } from "./record.js";
import { SecureStream } from "./stream.js";

export interface SmSecureInit {
  chainId: string;
  /** This node's SM2 node key. */
  identity: StaticIdentity;
  /**
   * The libp2p peer id the chain binds to this SM2 node key now (the current validator and
   * observer sets), or undefined when the key may not connect (SM_PEER_NOT_ALLOWED); it may also
   * throw an SM_* refusal of its own to say why. Asked for every handshake, so a change of the
   * sets by governance applies to the next connection.
   */
  peerIdOf(publicKey: Uint8Array): string | undefined;
  /** A handshake that takes longer is refused (SM_HANDSHAKE_TIMEOUT). Default 10 s. */
  handshakeTimeoutMs?: number;
  /** When this side updates its sending keys; the protocol's limits by default. */
  rekey?: Partial<RekeyLimits>;
  /** Every refused handshake or record, after the connection was aborted (logs, metrics, bans). */
  onRefused?(err: CustosError<SmSecureErrorCode>, info: RefusalInfo): void;
  /** Every completed handshake: the SM2 key a connection proved and the peer id it stands for. */
  onAuthenticated?(info: { peerId: string; publicKey: Uint8Array; direction: "inbound" | "outbound" }): void;
}

export interface RefusalInfo {
  direction: "inbound" | "outbound";
  /** The remote address of the connection. */
  remoteAddr: string;
  /** Where the handshake had completed: the peer id of the authenticated peer. */
  peerId?: string;
  /** "handshake" or "record". */
  phase: "handshake" | "record";
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

function remoteAddrOf(connection: MessageStream): string {
  return String((connection as { remoteAddr?: unknown }).remoteAddr ?? "");
}

/**
 * The libp2p ConnectionEncrypter of the protocol in this package's README
 * (`/custos/sm-secure/1.0.0`). The remote peer of a connection is the peer id the chain binds to
 * the SM2 key it proved; a key outside the sets is refused during the handshake.
 */
export class SmSecure implements ConnectionEncrypter {
  readonly protocol = PROTOCOL_ID;
  /** Since start: completed handshakes, refusals (handshakes and records), key updates. */
  readonly stats = { handshakes: 0, refused: 0, keyUpdatesSent: 0, keyUpdatesReceived: 0 };

  constructor(private readonly init: SmSecureInit) {}

  secureOutbound(connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.secure(connection, "outbound", options);
  }

  secureInbound(connection: MessageStream, options?: SecureConnectionOptions): Promise<SecuredConnection> {
    return this.secure(connection, "inbound", options);
  }

  private async secure(
    connection: MessageStream,
    direction: "inbound" | "outbound",
    options: SecureConnectionOptions = {},
  ): Promise<SecuredConnection> {
    const { init } = this;
    const timeout = AbortSignal.timeout(init.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const expected = options.remotePeer?.toString();
    const channel = new HandshakeChannel(connection);
    const authorize = (key: Uint8Array) => {
      const peerId = init.peerIdOf(key);
      if (peerId === undefined)
        throw refusal(
          "SM_PEER_NOT_ALLOWED",
          "the peer's SM2 key is not in the chain's validator or observer sets",
        );
      if (expected !== undefined && peerId !== expected)
        throw refusal("SM_PEER_MISMATCH", `the peer proved the SM2 key of ${peerId}, not of ${expected}`);
    };
    const hs = { chainId: init.chainId, identity: init.identity, authorize };
    let result: HandshakeResult;
    try {
      if (direction === "outbound") {
        const initiator = new Initiator(hs);
        await channel.write(initiator.hello(), signal);
        const { message, result: r } = initiator.finish(await channel.read(signal));
        await channel.write(message, signal);
        result = r;
      } else {
        const responder = new Responder(hs);
        await channel.write(responder.reply(await channel.read(signal)), signal);
        result = responder.finish(await channel.read(signal));
      }
      // asked again at the end: the sets may have changed during the handshake
      authorize(result.remoteStatic);
    } catch (err) {
      channel.detach();
      const e = isSmSecureError(err)
        ? err
        : signal.aborted
          ? refusal("SM_HANDSHAKE_TIMEOUT", `the handshake did not complete in time: ${errorMessage(err)}`)
          : refusal("SM_HANDSHAKE_CLOSED", `the handshake failed: ${errorMessage(err)}`);
      connection.abort(e);
      this.stats.refused++;
      init.onRefused?.(e, { direction, remoteAddr: remoteAddrOf(connection), phase: "handshake" });
      throw e;
    }
    const peerId = init.peerIdOf(result.remoteStatic) as string;
    const leftover = channel.detach();
    const sealer = new RecordSealer(result.sendSecret, init.rekey);
    const opener = new RecordOpener(result.recvSecret);
    const remoteAddr = remoteAddrOf(connection);
    const stats = this.stats;
    const secured = new SecureStream(connection, sealer, opener, leftover, {
      refused: (e) => {
        stats.refused++;
        init.onRefused?.(e, { direction, remoteAddr, peerId, phase: "record" });
      },
      keyUpdated: (dir, n) => {
        if (dir === "send") stats.keyUpdatesSent += n;
        else stats.keyUpdatesReceived += n;
      },
    });
    stats.handshakes++;
    init.onAuthenticated?.({ peerId, publicKey: result.remoteStatic, direction });
    return { connection: secured, remotePeer: peerIdFromString(peerId) };
  }
}

/**
 * For libp2p's `connectionEncrypters: [smSecure({...})]`. `onCreate` receives the instance
 * (its `stats`).
 */
export function smSecure(
  init: SmSecureInit,
  onCreate?: (encrypter: SmSecure) => void,
): (components: { logger?: ComponentLogger }) => ConnectionEncrypter {
  return () => {
    const e = new SmSecure(init);
    onCreate?.(e);
    return e;
  };
}
