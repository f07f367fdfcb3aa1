import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { applyControl, LinkProxy, linkPort, partitionCuts, readLinkState } from "../../src/links.js";
import { freeBasePort } from "../../src/testnet.js";
import { until } from "../helpers.js";

/** Two "nodes" that echo what they get, behind a link proxy on 127.0.0.1. */
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  cleanup = [];
});

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  cleanup.push(() => new Promise((ok) => server.close(() => ok())));
  return { server, port: (server.address() as { port: number }).port };
}

async function setup() {
  const dir = await mkdtemp(join(tmpdir(), "custos-links-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const a = await echoServer();
  const b = await echoServer();
  const basePort = await freeBasePort(2, 20_000, 10_000, true);
  await writeFile(join(dir, "links.json"), JSON.stringify({ version: 0, seed: 1, cuts: [], links: {} }));
  const proxy = new LinkProxy({ dir, targets: [a.port, b.port], basePort });
  await proxy.start();
  cleanup.push(() => proxy.stop());
  /** A connection "from node 0 to node 1" through the proxy. */
  const dial = async (): Promise<Socket> => {
    const s = tcpConnect({ host: "127.0.0.1", port: linkPort(basePort, 2, 0, 1) });
    s.on("error", () => {});
    await new Promise<void>((ok) => s.once("connect", () => ok()));
    cleanup.push(async () => {
      s.destroy();
    });
    return s;
  };
  return { dir, proxy, dial };
}

/** Sends `text` and resolves with the time until the echo came back, or undefined after `ms`. */
function roundTrip(s: Socket, text: string, ms = 3000): Promise<number | undefined> {
  const t0 = Date.now();
  return new Promise((ok) => {
    let got = "";
    const timer = setTimeout(() => {
      s.off("data", on);
      ok(undefined);
    }, ms);
    const on = (d: Buffer) => {
      got += String(d);
      if (got.includes(text)) {
        clearTimeout(timer);
        s.off("data", on);
        ok(Date.now() - t0);
      }
    };
    s.on("data", on);
    s.write(text);
  });
}

describe("the link proxy", () => {
  it("partition groups become directed cuts both ways between every two groups", () => {
    expect(partitionCuts([[0], [1, 2]]).sort()).toEqual(["0>1", "0>2", "1>0", "2>0"]);
    expect(
      partitionCuts([
        [0, 1],
        [2, 3],
      ]),
    ).toHaveLength(8);
  });

  it("forwards bytes, delays them as set, drops them across a cut, and closes the broken connection on heal", async () => {
    const { dir, dial } = await setup();
    const s = await dial();
    expect(await roundTrip(s, "hello")).toBeDefined();
    // 150 ms each way
    await applyControl(dir, (c) => ({ ...c, links: { "0>1": { delayMs: 150 }, "1>0": { delayMs: 150 } } }));
    const slow = (await roundTrip(s, "slow")) as number;
    expect(slow).toBeGreaterThanOrEqual(290);
    // one-way cut 0 -> 1: what 0 sends never arrives
    await applyControl(dir, (c) => ({ ...c, links: {}, cuts: ["0>1"] }));
    expect(await roundTrip(s, "dropped", 800)).toBeUndefined();
    // the counters reach links.state.json within a second
    await until(async () => ((await readLinkState(dir))?.droppedBytes ?? 0) > 0, 5000);
    // a new connection across the cut hangs: accepted, never answered
    const s2 = await dial();
    expect(await roundTrip(s2, "hang", 500)).toBeUndefined();
    // heal: both broken connections are closed; a new one works
    const closed = new Promise<void>((ok) => s.once("close", () => ok()));
    await applyControl(dir, (c) => ({ ...c, cuts: [] }));
    await closed;
    await until(async () => ((await readLinkState(dir))?.closedAfterCut ?? 0) >= 2, 5000);
    const s3 = await dial();
    expect(await roundTrip(s3, "again")).toBeDefined();
  });

  it("loss delays a lost chunk by a retransmission timeout and keeps the bytes in order; bandwidth paces them", async () => {
    const { dir, dial } = await setup();
    const s = await dial();
    await applyControl(dir, (c) => ({ ...c, seed: 7, links: { "0>1": { loss: 1 } } }));
    const lossy = (await roundTrip(s, "lost-then-delivered")) as number;
    expect(lossy).toBeGreaterThanOrEqual(190);
    await applyControl(dir, (c) => ({ ...c, links: { "1>0": { bandwidth: 20_000 } } }));
    const big = "x".repeat(10_000);
    const t = (await roundTrip(s, `${big}END`, 5000)) as number;
    expect(t).toBeGreaterThanOrEqual(450); // 10 KB at 20 KB/s
    await until(async () => ((await readLinkState(dir))?.lostChunks ?? 0) > 0, 5000);
  });
});
