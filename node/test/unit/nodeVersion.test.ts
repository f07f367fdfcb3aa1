import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * npm warns on Node 20 that p-retry@8 (a dependency of libp2p 3) declares `engines.node >=22`.
 * libp2p calls it in one place only, its reconnect queue (connection-manager/reconnect-queue.js),
 * for peers tagged KEEP_ALIVE; Custos tags none (the network redials its own peer list), and
 * p-retry uses nothing Node 20 lacks. This test runs it the way libp2p does, on the Node that runs
 * the suite, so that a p-retry that really needs Node 22 fails here rather than in production.
 */
// libp2p's entry is dist/src/index.js: its package directory is three levels up
const libp2pDir = dirname(dirname(dirname(fileURLToPath(import.meta.resolve("libp2p")))));
const pRetryDir = join(libp2pDir, "..", "p-retry");

describe("p-retry on this Node (libp2p's reconnect queue)", () => {
  it("is the copy libp2p resolves, the version that declares Node >=22", () => {
    const pkg = JSON.parse(readFileSync(join(pRetryDir, "package.json"), "utf8"));
    const libp2p = JSON.parse(readFileSync(join(libp2pDir, "package.json"), "utf8"));
    expect(libp2p.dependencies["p-retry"]).toMatch(/^\^8\./);
    expect(pkg.version).toMatch(/^8\./);
    expect(pkg.engines.node).toBe(">=22");
  });

  it("retries with back-off and stops on abort, as libp2p calls it", async () => {
    const { default: pRetry } = await import(join(pRetryDir, "index.js"));
    let attempts = 0;
    const result = await pRetry(
      async (attempt: number) => {
        attempts = attempt;
        if (attempt < 3) throw new Error(`dial failed ${attempt}`);
        return "connected";
      },
      { retries: 5, factor: 2, minTimeout: 1, signal: new AbortController().signal },
    );
    expect(result).toBe("connected");
    expect(attempts).toBe(3);

    const stop = new AbortController();
    const run = pRetry(
      async () => {
        stop.abort(new Error("node stopping"));
        throw new Error("dial failed");
      },
      { retries: 5, minTimeout: 10_000, signal: stop.signal },
    );
    await expect(run).rejects.toThrow("node stopping");
  });
});
