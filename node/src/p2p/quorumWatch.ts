import type { Logger } from "@custos/utils";
import type { P2pNetwork } from "./network.js";

/**
 * Tells the operator, in node.log, when this validator cannot reach a quorum of validators (no
 * block can commit) and when it can again. The first count, while the peers are still being
 * dialled, is not news.
 */
export class QuorumWatch {
  private quorate: boolean | undefined;
  /** When a validator or observer last connected or disconnected (ms). */
  changedAt = 0;

  constructor(
    private readonly net: P2pNetwork,
    private readonly chain: { validators: () => number; selfVotes: () => boolean },
    private readonly log: Logger,
  ) {}

  start(): void {
    this.net.onPeersChanged = () => this.peersChanged();
  }

  private peersChanged(): void {
    this.changedAt = Date.now();
    const n = this.chain.validators();
    const reachable =
      this.net.connectedPeers().filter((p) => p.role === "validator").length +
      (this.chain.selfVotes() ? 1 : 0);
    const quorum = n - Math.floor((n - 1) / 3);
    const now = reachable >= quorum;
    if (now === this.quorate) return;
    if (!now && this.quorate !== undefined)
      this.log.warn("quorum lost: no block can commit until more validators are reachable", {
        reachable,
        validators: n,
        quorum,
      });
    else if (now && this.quorate === false)
      this.log.info("quorum regained", { reachable, validators: n, quorum });
    this.quorate = now;
  }
}
