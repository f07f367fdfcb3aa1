import { existsSync, readdirSync, readFileSync } from "node:fs";
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

/**
 * npm 11 asks every dependency's install script to be reviewed in package.json's `allowScripts`
 * (npm 12 will run only the allowed ones). The root package.json decides each (README,
 * "Versions"); these tests keep the list complete and check that the packages whose script is
 * refused have what they need without it, on this platform.
 */
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const rootPkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));

function installScripts(): string[] {
  const found: string[] = [];
  const visit = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.startsWith(".")) continue;
      const p = join(dir, e);
      if (e.startsWith("@")) {
        visit(p);
        continue;
      }
      const pkgFile = join(p, "package.json");
      if (!existsSync(pkgFile)) continue;
      const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
      const s = pkg.scripts ?? {};
      // npm runs `node-gyp rebuild` for a binding.gyp when the package has no install script
      if (
        s.preinstall ||
        s.install ||
        s.postinstall ||
        (existsSync(join(p, "binding.gyp")) && pkg.gypfile !== false)
      )
        found.push(pkg.name);
      visit(join(p, "node_modules"));
    }
  };
  visit(join(ROOT, "node_modules"));
  return [...new Set(found)].sort();
}

describe("install scripts (allowScripts)", () => {
  it("every dependency with an install script has a decision in package.json", () => {
    expect(installScripts()).toEqual(Object.keys(rootPkg.allowScripts).sort());
  });

  it("the refused ones work without their script: prebuilt binaries are in place", async () => {
    expect(rootPkg.allowScripts).toMatchObject({
      "classic-level": false,
      esbuild: false,
      "msgpackr-extract": false,
    });
    const platform = `${process.platform}-${process.arch}`;
    // classic-level: node-gyp-build loads prebuilds/<platform>/ at run time
    expect(readdirSync(join(ROOT, "node_modules", "classic-level", "prebuilds"))).toContain(platform);
    const { ClassicLevel } = await import("classic-level");
    expect(typeof ClassicLevel).toBe("function");
    // esbuild: the binary comes in the optional package @esbuild/<platform>; the script only checked it
    expect(existsSync(join(ROOT, "node_modules", "@esbuild", platform, "bin", "esbuild"))).toBe(true);
    const esbuild = await import("esbuild");
    expect((await esbuild.transform("let a: number = 1", { loader: "ts" })).code).toBe("let a = 1;\n");
    // msgpackr-extract: an optional speed-up, prebuilt in @msgpackr-extract/msgpackr-extract-<platform>
    expect(existsSync(join(ROOT, "node_modules", "@msgpackr-extract", `msgpackr-extract-${platform}`))).toBe(
      true,
    );
  });
});
