// `npm run bench -- <name> [--json] [--runs N] [--ms N]`; `npm run bench:crypto`.
import { runCryptoBench } from "./crypto.js";

const BENCHMARKS: Record<string, (o: { runs: number; ms: number; json: boolean }) => Promise<unknown>> = {
  crypto: runCryptoBench,
};

function flag(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  const v = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const name = args[0];
  const run = name ? BENCHMARKS[name] : undefined;
  if (!run) {
    console.error(
      `usage: npm run bench -- <${Object.keys(BENCHMARKS).join("|")}> [--json] [--runs N] [--ms N]`,
    );
    process.exitCode = 2;
    return;
  }
  await run({ runs: flag(args, "--runs", 5), ms: flag(args, "--ms", 1000), json: args.includes("--json") });
}

main().catch((err) => {
  console.error(`benchmark failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
