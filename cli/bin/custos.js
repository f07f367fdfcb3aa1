#!/usr/bin/env node
// The `custos` command. Runs the compiled CLI (npm install builds it; `npm run build` rebuilds).
import { existsSync } from "node:fs";

const entry = new URL("../dist/index.js", import.meta.url);
if (!existsSync(entry)) {
  console.error("error: the custos CLI is not built; run `npm run build` in the repository root");
  process.exit(1);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);
