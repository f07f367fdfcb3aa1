import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { withDialAddresses } from "../../src/p2p/network.js";
import { tempDir } from "../helpers.js";

const PEER = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";

describe("config p2p.dial (where this node dials a peer instead of genesis's address)", () => {
  it("is read by peer id and replaces only that peer's addresses", async () => {
    const t = await tempDir("custos-dial-");
    try {
      await writeFile(
        join(t.dir, "config.json"),
        JSON.stringify({ p2p: { dial: { [PEER]: ["/ip4/127.0.0.1/tcp/20201"] } } }),
      );
      const c = await loadConfig(t.dir);
      expect(c.p2p.dial).toEqual({ [PEER]: ["/ip4/127.0.0.1/tcp/20201"] });
      const peers = withDialAddresses(
        [
          { index: 0, peerId: PEER, addrs: ["/ip4/127.0.0.1/tcp/30300"], role: "validator" },
          { index: 1, peerId: "other", addrs: ["/ip4/127.0.0.1/tcp/30301"], role: "validator" },
        ],
        c.p2p.dial,
      );
      expect(peers.map((p) => p.addrs)).toEqual([["/ip4/127.0.0.1/tcp/20201"], ["/ip4/127.0.0.1/tcp/30301"]]);
    } finally {
      await t.cleanup();
    }
  });

  it("refuses what is not a peer id -> list of multiaddrs, naming the field", async () => {
    const t = await tempDir("custos-dial-");
    try {
      for (const dial of [
        [],
        { [PEER]: [] },
        { [PEER]: ["127.0.0.1:1"] },
        { "not a peer": ["/ip4/1.2.3.4/tcp/1"] },
      ]) {
        await writeFile(join(t.dir, "config.json"), JSON.stringify({ p2p: { dial } }));
        await expect(loadConfig(t.dir)).rejects.toMatchObject({
          code: "CONFIG_INVALID",
          message: expect.stringMatching(/config\.json p2p\.dial/),
        });
      }
    } finally {
      await t.cleanup();
    }
  });
});
