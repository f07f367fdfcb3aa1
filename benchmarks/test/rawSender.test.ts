import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { RawSender } from "../src/load.js";

type Handler = (body: unknown, res: ServerResponse) => void;

/** A real node:http server on a kernel-chosen port, answering custos_sendTx as `handle` says. */
async function serve(handle: Handler): Promise<{ url: string; server: Server; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handle(JSON.parse(Buffer.concat(chunks).toString()), res));
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, server, sockets };
}

const answer = (req: { id: number; params: string[] }) =>
  req.params[0] === "0xbad"
    ? { jsonrpc: "2.0", id: req.id, error: { code: -32000, message: "busy", data: { code: "TX_POOL_FULL" } } }
    : { jsonrpc: "2.0", id: req.id, result: { hash: req.params[0] } };

const open: { server: Server; sender: RawSender }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    o.sender.close();
    o.server.closeAllConnections();
    await new Promise((r) => o.server.close(r));
  }
});

describe("RawSender (the load generator's HTTP client)", () => {
  it("reads answers framed by Content-Length and as chunks, one request and batches", async () => {
    let chunked = false;
    const { url, server } = await serve((body, res) => {
      const out = JSON.stringify(Array.isArray(body) ? body.map(answer) : answer(body as never));
      if (chunked) res.writeHead(200, { "content-type": "application/json" }).end(out);
      else res.writeHead(200, { "content-length": Buffer.byteLength(out) }).end(out);
    });
    const sender = new RawSender(url);
    open.push({ server, sender });
    expect(await sender.send(["0x01"])).toEqual([false]);
    expect(await sender.send(["0xbad"])).toEqual([true]);
    chunked = true;
    expect(await sender.send(["0x02", "0xbad", "0x03"])).toEqual([false, true, false]);
    expect(await sender.send(["0xbad"])).toEqual([true]);
    expect(Object.fromEntries(sender.refusals)).toEqual({ TX_POOL_FULL: 3 });
  });

  it("sends again once when the server closed an idle keep-alive connection", async () => {
    const { url, server, sockets } = await serve((body, res) => {
      const out = JSON.stringify(answer(body as never));
      res.writeHead(200, { "content-length": Buffer.byteLength(out) }).end(out);
    });
    const sender = new RawSender(url);
    open.push({ server, sender });
    expect(await sender.send(["0x01"])).toEqual([false]);
    expect(sockets.size).toBe(1);
    for (const s of sockets) s.destroy(); // as a keep-alive timeout would
    while (sockets.size > 0) await new Promise((r) => setImmediate(r));
    expect(await sender.send(["0x02"])).toEqual([false]);
    expect(sender.refusals.size).toBe(0);
  });

  it("keeps to maxSockets connections and answers every request", async () => {
    let most = 0;
    const { url, server, sockets } = await serve((body, res) => {
      most = Math.max(most, sockets.size);
      const out = JSON.stringify(answer(body as never));
      setImmediate(() => res.writeHead(200, { "content-length": Buffer.byteLength(out) }).end(out));
    });
    const sender = new RawSender(url, 4);
    open.push({ server, sender });
    const all = await Promise.all(
      Array.from({ length: 40 }, (_, i) => sender.send([i % 5 === 0 ? "0xbad" : "0x01"])),
    );
    expect(all.filter(([refused]) => refused)).toHaveLength(8);
    expect(most).toBeLessThanOrEqual(4);
    expect(Object.fromEntries(sender.refusals)).toEqual({ TX_POOL_FULL: 8 });
  });

  it("a request waiting for a socket gets one when a connection is dropped", async () => {
    let n = 0;
    const { url, server } = await serve((body, res) => {
      const out = JSON.stringify(answer(body as never));
      // the first answer closes its connection, as a server going away would
      const close = n++ === 0 ? { connection: "close" } : {};
      res.writeHead(200, { "content-length": Buffer.byteLength(out), ...close }).end(out);
    });
    const sender = new RawSender(url, 1);
    open.push({ server, sender });
    const all = await Promise.all([sender.send(["0x01"]), sender.send(["0x02"]), sender.send(["0x03"])]);
    expect(all).toEqual([[false], [false], [false]]);
    expect(sender.refusals.size).toBe(0);
  });

  it("counts an answer it cannot read as BAD_RESPONSE and a dead server as NETWORK", async () => {
    const { url, server } = await serve((_body, res) => {
      res.writeHead(200, { "content-length": 5 }).end("nope!");
    });
    const sender = new RawSender(url);
    open.push({ server, sender });
    expect(await sender.send(["0x01"])).toEqual([true]);
    expect(Object.fromEntries(sender.refusals)).toEqual({ BAD_RESPONSE: 1 });
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    expect(await sender.send(["0x01"])).toEqual([true]);
    expect(sender.refusals.get("NETWORK")).toBe(1);
  });

  it("counts an answer that is not HTTP/1.1, or has no length and no chunks, as BAD_RESPONSE", async () => {
    // a bare TCP server: node:http always answers HTTP/1.1 with a framing
    const answers = [
      "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
      'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"result":{}}',
      "SSH-2.0-OpenSSH_9.2\r\n\r\n",
    ];
    let n = 0;
    const server = createTcpServer((s) => {
      s.once("data", () => s.end(answers[n++ % answers.length]));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const { port } = server.address() as { port: number };
    const sender = new RawSender(`http://127.0.0.1:${port}`);
    try {
      for (let i = 0; i < answers.length; i++) expect(await sender.send(["0x01"])).toEqual([true]);
      expect(Object.fromEntries(sender.refusals)).toEqual({ BAD_RESPONSE: answers.length });
    } finally {
      sender.close();
      await new Promise((r) => server.close(r));
    }
  });
});
