import { createServer } from "node:net";

/** Whether `port` can be listened on at 127.0.0.1 right now. */
export function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const s = createServer();
    s.once("error", () => done(false));
    s.listen(port, "127.0.0.1", () => s.close(() => done(true)));
  });
}

/**
 * A port the kernel picks as free on 127.0.0.1 right now, for a listener that must know its port
 * before it starts (a process started with it). It can be taken in between: callers retry a clash.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A port for a listener that must be named before it starts (a libp2p address in a genesis):
 * free now and below Linux's ephemeral range (32768 and up), so that no outgoing connection of
 * another process takes it in between, as a kernel-picked port could be.
 */
export async function freeListenPort(from = 20_000, span = 12_000): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * span);
    if (await portFree(port)) return port;
  }
  throw new Error(`no free port in ${from}-${from + span}`);
}
