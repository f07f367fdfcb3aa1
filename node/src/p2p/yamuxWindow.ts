import { StreamState, YamuxStream } from "@chainsafe/libp2p-yamux/stream";

/**
 * Yamux flow control, as the yamux spec leaves it to the receiver: a WINDOW_UPDATE goes out once
 * half or more of a stream's receive window has been consumed (as hashicorp/yamux and rust-yamux
 * do), not after every data frame. @chainsafe/libp2p-yamux 8 sends one after every frame it
 * receives, so each consensus vote, gossip batch or sync answer cost a second record on the
 * wire: a 12-byte frame, sealed (SM4 + HMAC-SM3), written, read, opened and parsed by the sender,
 * as much work per message as the message itself. The sender's window is never exhausted by the
 * delay: it is topped up while at least half of it is still free.
 *
 * Applied once, when the network module loads (the muxer makes its streams from this class).
 * Updates that carry a flag (SYN, ACK) and those of a paused stream go through unchanged.
 */
interface WindowFields {
  state: StreamState;
  recvWindow: number;
  recvWindowCapacity: number;
}

const PATCHED = Symbol.for("custos.yamuxWindow");

function consumedBelowHalf(s: WindowFields): boolean {
  return s.state === StreamState.Established && s.recvWindow - s.recvWindowCapacity < s.recvWindow / 2;
}

const proto = YamuxStream.prototype as unknown as {
  sendWindowUpdate(): void;
  [PATCHED]?: true;
};
const original = proto.sendWindowUpdate;

/**
 * Whether the policy is in force. A yamux release without this method keeps its own policy (the
 * node works, with more frames); the test of this policy fails then, so an upgrade is noticed.
 */
export const yamuxWindowPolicy = typeof original === "function";

if (yamuxWindowPolicy && !proto[PATCHED]) {
  proto[PATCHED] = true;
  proto.sendWindowUpdate = function sendWindowUpdate(this: WindowFields) {
    if (consumedBelowHalf(this)) return;
    original.call(this);
  };
}
