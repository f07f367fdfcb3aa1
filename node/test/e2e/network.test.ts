import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CustosClient, Wallet } from "@custos/client";
import { generateKeyPair } from "@custos/crypto";
import { freeListenPort, toHex } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import { CustosNode, initHome } from "../../src/index.js";
import { DEV_TIERS } from "../../src/init.js";
import { Channel } from "../../src/p2p/network.js";
import { tempDir, until } from "../helpers.js";

const PASSWORD = "network test password";

const nodes: (CustosNode | undefined)[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const n of nodes) await n?.stop().catch(() => {});
  if (!process.env.KEEP_TMP) for (const c of cleanups) await c();
});

describe("four validators and an observer over libp2p", () => {
  it("commit the same blocks, keep going without one of them, let it sync back; the observer syncs from zero and refuses writes", async () => {
    const homes: string[] = [];
    const inits = [];
    for (let i = 0; i < 5; i++) {
      const t = await tempDir(`custos-net${i}-`);
      cleanups.push(t.cleanup);
      homes.push(t.dir);
      inits.push(await initHome({ home: t.dir, dev: false, password: PASSWORD, kdfIterations: 1000 }));
      const cfgPath = join(t.dir, "config.json");
      const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
      cfg.consensus = { baseTimeoutMs: 300, maxTimeoutMs: 2400 };
      await writeFile(cfgPath, JSON.stringify(cfg));
    }
    // named in genesis before the nodes listen: below the ephemeral range, so no outgoing
    // connection of another test takes one in between
    const ports: number[] = [];
    while (ports.length < 5) {
      const p = await freeListenPort();
      if (!ports.includes(p)) ports.push(p);
    }
    const operator = generateKeyPair();
    const consumer = generateKeyPair();
    const merchant = generateKeyPair();
    const genesis = {
      chainId: "custos-net-test",
      timestamp: Date.now(),
      blockLimitWindow: 600,
      consensus: {
        validators: inits.slice(0, 4).map((r, i) => ({
          name: `validator-${i}`,
          publicKey: r.nodePublicKey,
          peerId: r.peerId,
          p2p: [`/ip4/127.0.0.1/tcp/${ports[i]}`],
        })),
        minBlockIntervalMs: 50,
        maxBlockTxs: 1000,
      },
      observers: [
        {
          name: "auditor-node",
          publicKey: inits[4]?.nodePublicKey,
          peerId: inits[4]?.peerId,
          p2p: [`/ip4/127.0.0.1/tcp/${ports[4]}`],
        },
      ],
      members: [
        { name: "operator", publicKey: toHex(operator.publicKey), roles: ["operator"], ecnyTier: 1 },
        { name: "consumer", publicKey: toHex(consumer.publicKey), roles: ["consumer"], ecnyTier: 1 },
        { name: "merchant", publicKey: toHex(merchant.publicKey), roles: ["merchant"], ecnyTier: 1 },
      ],
      ecny: { tiers: DEV_TIERS, largeTxThreshold: "5000000" },
      p2p: { secure: "sm" },
    };
    for (const h of homes) await writeFile(join(h, "genesis.json"), JSON.stringify(genesis));
    for (let i = 0; i < 4; i++)
      nodes[i] = await CustosNode.start({
        home: homes[i] as string,
        rpcListen: "127.0.0.1:0",
        password: PASSWORD,
      });
    await until(() => nodes.every((n) => (n?.network?.connected ?? 0) === 3));
    const observerHome = homes[4] as string;
    homes.length = 4;
    const clients = nodes.map((n) => new CustosClient(n?.rpcUrl as string));
    const hashesAgree = async (upTo: number, who: number[]) => {
      for (let h = 1; h <= upTo; h++) {
        const hashes = new Set<string>();
        for (const i of who)
          hashes.add(((await (clients[i] as CustosClient).getBlock(h)) as { hash: string }).hash);
        if (hashes.size !== 1) return false;
      }
      return true;
    };

    // transactions sent to different validators all commit, and every validator has the same chain
    const op = (i: number) => new Wallet(clients[i] as CustosClient, operator);
    await op(2).send({ to: "ecny", method: "issue", args: [consumer.address, 1_000_000n, "rc-net-1"] });
    await op(3).send({ to: "ecny", method: "issue", args: [consumer.address, 1_000_000n, "rc-net-2"] });
    const t = await new Wallet(clients[0] as CustosClient, consumer).send({
      to: "ecny",
      method: "transfer",
      args: [merchant.address, 250n],
    });
    expect(t.receipt?.success).toBe(true);
    const height = (await (clients[0] as CustosClient).status()).height;
    await until(async () =>
      (await Promise.all(clients.map((c) => c.status()))).every((s) => s.height >= height),
    );
    expect(await hashesAgree(height, [0, 1, 2, 3])).toBe(true);
    for (const c of clients) expect((await c.ecnyBalance(merchant.address)).balance).toBe("250");
    const cert = (await (clients[1] as CustosClient).getBlock(height)) as {
      certificate: { signatures: unknown[] };
    };
    expect(cert.certificate.signatures.length).toBeGreaterThanOrEqual(3);

    // a validator that sends garbage on the consensus channel is disconnected, and the chain goes on
    nodes[0]?.network?.send(Channel.consensus, 2, new Uint8Array([0x93, 1, 2, 3]));
    await until(() => (nodes[2]?.network?.peersDisconnected ?? 0) >= 1, 5000);
    expect(nodes[2]?.network?.peersDisconnected).toBeGreaterThanOrEqual(1);
    await until(() => nodes.every((n) => (n?.network?.connected ?? 0) === 3)); // the redialler reconnects
    expect(
      (await op(2).send({ to: "ecny", method: "issue", args: [merchant.address, 1n, "rc-after-garbage"] }))
        .receipt?.success,
    ).toBe(true);

    // one validator stops: three of four still commit, more blocks than consensus keeps decisions for
    await nodes[1]?.stop();
    nodes[1] = undefined;
    for (let k = 0; k < 20; k++) {
      const r = await op(k === 0 ? 0 : 3).send(
        { to: "ecny", method: "issue", args: [merchant.address, 1n, `rc-without-1-${k}`] },
        { timeoutMs: 30_000 },
      );
      expect(r.receipt?.success).toBe(true);
    }
    const h2 = (await (clients[0] as CustosClient).status()).height;
    expect(h2).toBeGreaterThan(height + 19);
    await until(async () =>
      (await Promise.all([0, 2, 3].map((i) => (clients[i] as CustosClient).status()))).every(
        (s) => s.height >= h2,
      ),
    );
    expect(await hashesAgree(h2, [0, 2, 3])).toBe(true);

    // it restarts and syncs back to the same chain (block ranges with certificates)
    nodes[1] = await CustosNode.start({
      home: homes[1] as string,
      rpcListen: "127.0.0.1:0",
      password: PASSWORD,
    });
    clients[1] = new CustosClient(nodes[1].rpcUrl);
    await op(0).send({ to: "ecny", method: "issue", args: [merchant.address, 1n, "rc-after-restart"] });
    const h3 = (await (clients[0] as CustosClient).status()).height;
    await until(async () => (await (clients[1] as CustosClient).status()).height >= h3, 30_000);
    expect(await hashesAgree(h3, [0, 1, 2, 3])).toBe(true);
    expect((await (clients[1] as CustosClient).ecnyBalance(merchant.address)).balance).toBe("272");
    expect(nodes[1].sync.applied).toBeGreaterThan(0);

    // an observer started from zero syncs every block, verifies it, and refuses writes
    const observer = await CustosNode.start({
      home: observerHome,
      rpcListen: "127.0.0.1:0",
      password: PASSWORD,
      observer: true,
    });
    nodes[4] = observer;
    const oc = new CustosClient(observer.rpcUrl);
    await until(async () => (await oc.status()).height >= h3, 30_000);
    expect((await oc.status()).role).toBe("observer");
    for (let h = 1; h <= h3; h++)
      expect(((await oc.getBlock(h)) as { hash: string }).hash).toBe(
        ((await (clients[0] as CustosClient).getBlock(h)) as { hash: string }).hash,
      );
    expect((await oc.ecnyBalance(merchant.address)).balance).toBe("272");
    await expect(
      new Wallet(oc, operator).send({
        to: "ecny",
        method: "issue",
        args: [merchant.address, 1n, "rc-observer"],
      }),
    ).rejects.toMatchObject({ code: "OBSERVER_READ_ONLY" });
    // and follows new blocks as they are announced
    await op(2).send({ to: "ecny", method: "issue", args: [merchant.address, 1n, "rc-observed"] });
    await until(async () => (await oc.ecnyBalance(merchant.address)).balance === "273", 10_000);
  }, 120_000);
});
