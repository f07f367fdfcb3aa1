import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { type Socket, connect as tcpConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyControl, type LinkControl, LinkProxy, linkPort } from "../../src/links.js";
import {
  applyKernelFaults,
  createNetwork,
  destroyNetwork,
  faceIp,
  inNamespace,
  kernelDrops,
  type NetnsLayout,
  netnsSupport,
  nodeIp,
  planLayout,
} from "../../src/netns.js";
import { until } from "../helpers.js";

/**
 * Two "nodes" in network namespaces of their own (real namespaces, veth, bridge and tc; the test
 * needs root, as CI has): node 1 echoes on its own address; node 0 forwards what the test sends it
 * to node 1 through the link proxy (port A) or straight to node 1's own address (port B). The
 * forwarding happens inside node 0's namespace, so node 0's egress filters apply as they do to a
 * Custos node's libp2p connections.
 */
const support = netnsSupport();
const ECHO = 7000;
const VIA_PROXY = 7001;
const DIRECT = 7002;
const BASE = 20_000;

const agent = `
const net = require("node:net");
const [mode, host, a, b, c] = process.argv.slice(1);
if (mode === "echo") net.createServer((s) => s.pipe(s)).listen(Number(a), host);
else for (const [port, to] of [[Number(a), b], [Number(c), process.argv[6]]])
  net.createServer((s) => {
    const [h, p] = to.split(":");
    const up = net.connect(Number(p), h);
    s.on("error", () => {}); up.on("error", () => s.destroy());
    s.pipe(up); up.pipe(s);
  }).listen(port, host);
setInterval(() => {}, 60000);
`;

describe.skipIf(!support.ok)("network namespaces for --faults (the kernel's cuts, loss, bandwidth)", () => {
  let dir = "";
  let l: NetnsLayout;
  let proxy: LinkProxy;
  const children: ReturnType<typeof spawn>[] = [];
  const sockets: Socket[] = [];

  const run = (i: number, args: string[]) => {
    const [cmd, ...rest] = inNamespace(l, i);
    const child = spawn(cmd as string, [...rest, process.execPath, "-e", agent, ...args], {
      stdio: "ignore",
    });
    children.push(child);
  };
  const open = async (port: number): Promise<Socket> => {
    const s = tcpConnect({ host: nodeIp(l, 0), port });
    s.on("error", () => {});
    sockets.push(s);
    await new Promise<void>((ok, fail) => {
      s.once("connect", () => ok());
      s.once("error", fail);
    });
    return s;
  };
  /** Sends `bytes` and resolves with the ms until all came back, or undefined after `ms`. */
  const echo = (s: Socket, bytes: number, ms: number): Promise<number | undefined> => {
    const t0 = Date.now();
    return new Promise((ok) => {
      let got = 0;
      const timer = setTimeout(() => {
        s.off("data", on);
        ok(undefined);
      }, ms);
      const on = (d: Buffer) => {
        got += d.length;
        if (got >= bytes) {
          clearTimeout(timer);
          s.off("data", on);
          ok(Date.now() - t0);
        }
      };
      s.on("data", on);
      s.write(Buffer.alloc(bytes, 7));
    });
  };
  const control = (change: (c: LinkControl) => LinkControl) => applyControl(dir, change);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "custos-netns-"));
    l = await planLayout(dir, 2);
    await createNetwork(l);
    await writeFile(join(dir, "links.json"), JSON.stringify({ version: 0, seed: 1, cuts: [], links: {} }));
    proxy = new LinkProxy({
      dir,
      targets: [ECHO, ECHO],
      basePort: BASE,
      netns: {
        listen: (j) => faceIp(l, j),
        target: (j) => nodeIp(l, j),
        source: (i) => faceIp(l, i),
        kernel: (c) => applyKernelFaults(l, c),
      },
    });
    await proxy.start();
    run(1, ["echo", nodeIp(l, 1), String(ECHO)]);
    run(0, [
      "forward",
      nodeIp(l, 0),
      String(VIA_PROXY),
      `${faceIp(l, 1)}:${linkPort(BASE, 2, 0, 1)}`,
      String(DIRECT),
      `${nodeIp(l, 1)}:${ECHO}`,
    ]);
    await until(async () => {
      try {
        const s = await open(VIA_PROXY);
        return (await echo(s, 10, 1000)) !== undefined;
      } catch {
        return false;
      }
    }, 20_000);
  }, 60_000);

  afterAll(async () => {
    for (const s of sockets) s.destroy();
    for (const c of children) c.kill("SIGKILL");
    await proxy?.stop();
    if (l) await destroyNetwork(l);
    await rm(dir, { recursive: true, force: true });
  });

  it("a cut drops node 0's packets in the kernel, and the same connection carries on after the heal", async () => {
    const s = await open(VIA_PROXY);
    expect(await echo(s, 100, 5000)).toBeDefined();
    const before = (await kernelDrops(l))[0]?.faults ?? 0;
    await control((c) => ({ ...c, cuts: ["0>1"] }));
    const pending = echo(s, 100, 20_000);
    await until(async () => ((await kernelDrops(l))[0]?.faults ?? 0) > before, 10_000);
    await control((c) => ({ ...c, cuts: [] }));
    // TCP retransmits what the cut dropped: no connection was closed by anyone
    expect(await pending).toBeDefined();
    expect(s.destroyed).toBe(false);
  }, 40_000);

  it("loss drops packets at random in the kernel; TCP delivers everything all the same", async () => {
    const s = await open(VIA_PROXY);
    const before = (await kernelDrops(l))[0]?.faults ?? 0;
    await control((c) => ({ ...c, links: { "0>1": { loss: 0.3 } } }));
    for (let k = 0; k < 20; k++) expect(await echo(s, 2000, 20_000)).toBeDefined();
    expect((await kernelDrops(l))[0]?.faults ?? 0).toBeGreaterThan(before);
    await control((c) => ({ ...c, links: {} }));
  }, 60_000);

  it("bandwidth paces the link in the kernel", async () => {
    const s = await open(VIA_PROXY);
    await control((c) => ({ ...c, links: { "0>1": { bandwidth: 20_000 } } }));
    // 60 KB at 20 KB/s cannot come back in much less than 3 s (a lower bound: a slow machine only adds)
    const ms = await echo(s, 60_000, 30_000);
    expect(ms).toBeDefined();
    expect(ms as number).toBeGreaterThan(2400);
    await control((c) => ({ ...c, links: {} }));
    expect(await echo(s, 60_000, 10_000)).toBeDefined();
  }, 60_000);

  it("a node cannot go around the proxy to another node's own address", async () => {
    const before = (await kernelDrops(l))[0]?.bypass ?? 0;
    const s = await open(DIRECT);
    expect(await echo(s, 10, 2000)).toBeUndefined();
    expect((await kernelDrops(l))[0]?.bypass ?? 0).toBeGreaterThan(before);
  }, 20_000);
});
