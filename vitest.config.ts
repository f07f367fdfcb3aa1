import { defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

// Workspace packages export "custos-source" -> src/index.ts, so tests run against the
// TypeScript sources of every package without a build step in between.
const conditions = ["custos-source", ...defaultServerConditions];

const project = (name: string, root: string, extra: Record<string, unknown> = {}) => ({
  extends: true as const,
  test: { name, root, include: ["test/**/*.test.ts"], ...extra },
});

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    testTimeout: 30_000,
    // vitest leaves one core idle by default; the machines have two and the suite needs both
    maxWorkers: 2,
    hookTimeout: 60_000,
    projects: [
      project("utils", "packages/utils"),
      project("logger", "packages/logger"),
      project("crypto", "packages/crypto"),
      project("codec", "packages/codec"),
      project("types", "packages/types"),
      project("audit", "packages/audit"),
      project("sm-secure", "packages/sm-secure"),
      project("client", "packages/client"),
      project("consensus", "consensus"),
      project("vm", "vm"),
      project("contract-sdk", "contracts/sdk"),
      project("prepaid-card", "contracts/prepaid-card"),
      project("node", "node"),
      project("cli", "cli"),
      // the crash-point tests (all validators SIGKILLed inside a commit, and the rest) are a
      // documented command, not part of npm test: npm run test:faults (testnet/README.md)
      project("testnet", "testnet", {
        exclude: process.env.CUSTOS_FAULT_TESTS ? [] : ["test/e2e/crash.test.ts"],
      }),
      project("explorer", "explorer"),
      project("benchmarks", "benchmarks"),
      project("repo", "."),
    ],
  },
});
