// npm run sim -- --seeds 10000 [--nodes 4|7|10] [--seed S] [--byzantine K] [--kinds twin,equivocate] [--trace]
import { BYZANTINE_KINDS, type Byzantine, randomConfig, runSeed, type SimResult } from "./simulator.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function num(name: string, fallback: number): number {
  const v = arg(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`${name} takes a whole number`);
    process.exit(2);
  }
  return n;
}

const nodes = num("--nodes", 4);
const byzantine = num("--byzantine", Math.floor((nodes - 1) / 3));
const kinds = (arg("--kinds")?.split(",") ?? BYZANTINE_KINDS) as Byzantine[];
if (kinds.some((k) => !BYZANTINE_KINDS.includes(k))) {
  console.error(`--kinds takes a comma-separated list of ${BYZANTINE_KINDS.join(", ")}`);
  process.exit(2);
}
const one = arg("--seed");
const seeds =
  one !== undefined ? [num("--seed", 1)] : Array.from({ length: num("--seeds", 1000) }, (_, i) => i + 1);
const started = performance.now();
const failures: SimResult[] = [];
let heights = 0;
let messages = 0;
for (const seed of seeds) {
  const r = runSeed(seed, nodes, byzantine, kinds);
  heights += Math.min(...r.heights);
  messages += r.messages;
  if (!r.ok) failures.push(r);
}
const secs = (performance.now() - started) / 1000;
console.log(
  `${seeds.length} seeds, n = ${nodes}, ${byzantine} byzantine: ${seeds.length - failures.length} passed, ${failures.length} failed ` +
    `(${secs.toFixed(1)} s; ${Math.round(heights / seeds.length)} blocks and ${Math.round(messages / seeds.length)} messages per run)`,
);
for (const f of failures.slice(0, 5)) {
  const cfg = randomConfig(f.seed, nodes, byzantine, kinds);
  console.log(`\nseed ${f.seed} FAILED: ${f.failures.join("; ")}`);
  console.log(
    `  byzantine ${JSON.stringify([...cfg.byzantine])}, partitions ${JSON.stringify(cfg.partitions)}, crashes ${JSON.stringify(cfg.crashes)}`,
  );
  console.log(
    `  reproduce: npm run sim -- --nodes ${nodes} --byzantine ${byzantine} --kinds ${kinds.join(",")} --seed ${f.seed} --trace`,
  );
  if (process.argv.includes("--trace") || seeds.length === 1) console.log(f.trace.slice(-200).join("\n"));
}
if (one !== undefined && process.argv.includes("--trace") && failures.length === 0) {
  console.log(
    runSeed(seeds[0] as number, nodes, byzantine, kinds)
      .trace.slice(-200)
      .join("\n"),
  );
}
process.exitCode = failures.length > 0 ? 1 : 0;
