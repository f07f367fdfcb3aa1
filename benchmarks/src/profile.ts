// `npm run bench -- profile --dir DIR`: where the validators' CPU went, from the V8 CPU profiles
// a testnet benchmark run wrote (CUSTOS_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR").
// `npm run bench -- profile --perf FILE`: the same components over `perf script` output, every
// thread of the process (libuv's pool, LevelDB's, the kernel) and not only the main one.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/**
 * The node's components, innermost first: a sample counts for the innermost frame on its stack
 * that one of these names (so SM3 inside the state tree is the state tree's, a socket write
 * under gossip is the network's). Order matters only where a frame could match two.
 */
const COMPONENTS: [string, (f: CallFrame) => boolean][] = [
  ["SM2 verify and sign", (f) => /sm2\/|verifierPool|sm2-native/.test(f.url)],
  ["state tree (Merkle state root)", (f) => /stateTree\.js/.test(f.url)],
  ["audit index", (f) => /\/audit\/auditIndex\.js|\/audit\/dist\//.test(f.url)],
  ["audit chains (event hash chains)", (f) => /auditChain/.test(f.url)],
  ["tx decode and hash", (f) => /types\/dist\/tx\.js/.test(f.url)],
  ["execution (e-CNY, system contracts, VM)", (f) => /\/execution\/|\/system\/|\/vm\//.test(f.url)],
  ["block build, tx root, receipts", (f) => /blockBuilder|merkle\.js|receipt\.js/.test(f.url)],
  ["ledger (reads, commit, LevelDB)", (f) => /\/ledger\/|classic-level|abstract-level/.test(f.url)],
  ["pool admission", (f) => /\/txpool\//.test(f.url)],
  ["consensus (PBFT, votes, WAL)", (f) => /pbftDriver|\/consensus\/|consensus\/dist/.test(f.url)],
  ["tx gossip", (f) => /txGossip|gossipsub/.test(f.url)],
  [
    "connection encryption (sm-secure records, or noise)",
    (f) => /sm-secure|libp2p-noise|@noble\/ciphers|chacha/.test(f.url),
  ],
  [
    "libp2p (yamux, streams, peers)",
    (f) => /libp2p|yamux|it-length|it-pushable|uint8arraylist|multiformats|main-event/.test(f.url),
  ],
  ["JSON-RPC (HTTP, WebSocket)", (f) => /\/rpc\/|_http_|node_modules\/ws\//.test(f.url)],
  ["logs", (f) => /pino|sonic-boom|\/logger\//.test(f.url)],
  ["garbage collection", (f) => f.functionName === "(garbage collector)"],
];

function loadProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
}

export interface ProfileShare {
  component: string;
  ms: number;
  share: number;
}

/**
 * Sample time per component over the part of each profile where transactions were admitted
 * (from the first to the last sample inside the pool's admission: start-up and shutdown left
 * out). Sample time is wall time on the thread, so on a loaded machine it is more than CPU time;
 * the shares are what to read.
 */
export function summarise(files: string[]): { totalMs: number; shares: ProfileShare[] } {
  const by = new Map<string, number>();
  let total = 0;
  for (const file of files) {
    const p = loadProfile(file);
    const byId = new Map<number, ProfileNode>();
    const parent = new Map<number, number>();
    for (const n of p.nodes) {
      byId.set(n.id, n);
      for (const c of n.children ?? []) parent.set(c, n.id);
    }
    const memo = new Map<number, { component: string; admitting: boolean } | null>();
    const classify = (id: number): { component: string; admitting: boolean } | null => {
      const known = memo.get(id);
      if (known !== undefined) return known;
      const n = byId.get(id) as ProfileNode;
      const f = n.callFrame;
      if (f.functionName === "(idle)") {
        memo.set(id, null);
        return null;
      }
      let component: string | undefined;
      let admitting = false;
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const cf = (byId.get(at) as ProfileNode).callFrame;
        if (component === undefined) component = COMPONENTS.find(([, m]) => m(cf))?.[0];
        if (/\/txpool\//.test(cf.url)) admitting = true;
      }
      const out = { component: component ?? "other (Node internals, event loop, buffers)", admitting };
      memo.set(id, out);
      return out;
    };
    let first = -1;
    let last = -1;
    for (let i = 0; i < p.samples.length; i++) {
      if (classify(p.samples[i] as number)?.admitting) {
        if (first < 0) first = i;
        last = i;
      }
    }
    for (let i = Math.max(0, first); i <= last; i++) {
      const c = classify(p.samples[i] as number);
      if (!c) continue;
      const ms = (p.timeDeltas[i] ?? 0) / 1000;
      total += ms;
      by.set(c.component, (by.get(c.component) ?? 0) + ms);
    }
  }
  const shares = [...by]
    .map(([component, ms]) => ({ component, ms, share: total > 0 ? ms / total : 0 }))
    .sort((a, b) => b.ms - a.ms);
  return { totalMs: total, shares };
}

/** What the innermost frame is, for a `perf` sample that no component names. */
const NATIVE: [string, RegExp][] = [
  ["kernel (system calls, scheduling)", /\[kernel\.kallsyms\]/],
  ["garbage collection", /Scaveng|Marking|Sweep|ArrayBufferSweeper|ConcurrentMark|Evacuat/],
  ["V8's compiler", /compiler::|Compile|Turbofan|Maglev/],
  [
    "malloc and free",
    /^\s*[0-9a-f]+ (?:_int_malloc|_int_free|malloc|free|cfree|unlink_chunk|malloc_consolidate)\b/,
  ],
];

/** One frame of `perf script` text: a JIT'd function (--perf-basic-prof) or a native symbol. */
function perfFrame(line: string): CallFrame {
  const m = /^\s*[0-9a-f]+\s+(.*)\s+\((.*)\)$/.exec(line);
  const symbol = (m?.[1] ?? line.trim()).replace(/\+0x[0-9a-f]+$/, "");
  const js = /^JS:[*~^+-]?(\S*) (\S+):(\d+):\d+$/.exec(symbol);
  // a native frame's url is its shared object: the addon, classic-level's LevelDB, node itself
  if (!js) return { functionName: symbol, url: m?.[2] ?? "", lineNumber: 0 };
  return { functionName: js[1] ?? "", url: js[2] ?? "", lineNumber: Number(js[3]) };
}

/**
 * Samples per component in `perf script` output (`perf record -g` of node processes started with
 * --perf-basic-prof): the innermost frame that a component names, as for V8 profiles; a sample
 * that none names goes by its innermost frame (the kernel, the garbage collector, the compiler,
 * malloc) or else to "other". `kernelLeaf` counts the samples whose innermost frame is the kernel's.
 */
export function summarisePerf(text: string): {
  samples: number;
  kernelLeaf: number;
  shares: { component: string; samples: number; share: number }[];
} {
  const by = new Map<string, number>();
  let samples = 0;
  let kernelLeaf = 0;
  let frames: string[] | undefined;
  const flush = () => {
    if (!frames) return;
    samples++;
    const parsed = frames.map(perfFrame);
    const leaf = frames[0] ?? "";
    if (leaf.includes("[kernel.kallsyms]")) kernelLeaf++;
    const component =
      parsed.map((f) => COMPONENTS.find(([, m]) => m(f))?.[0]).find((c) => c !== undefined) ??
      NATIVE.find(([, re]) => re.test(leaf))?.[0] ??
      "other (Node internals, event loop, buffers)";
    by.set(component, (by.get(component) ?? 0) + 1);
    frames = undefined;
  };
  for (const line of text.split("\n")) {
    if (line.trim() === "") flush();
    else if (/^\s/.test(line)) frames?.push(line);
    else {
      flush();
      frames = [];
    }
  }
  flush();
  const shares = [...by]
    .map(([component, n]) => ({ component, samples: n, share: samples > 0 ? n / samples : 0 }))
    .sort((a, b) => b.samples - a.samples);
  return { samples, kernelLeaf, shares };
}

export async function runProfileSummary(o: { dir?: string; perf?: string; json: boolean }): Promise<unknown> {
  if (o.perf !== undefined) {
    const r = summarisePerf(readFileSync(o.perf, "utf8"));
    if (r.samples === 0) throw new Error(`no samples in ${o.perf} (perf script output expected)`);
    if (o.json) console.log(JSON.stringify(r, null, 2));
    else {
      console.log(
        `${r.samples} perf samples; the kernel is the innermost frame of ${pct(r.kernelLeaf / r.samples)} %`,
      );
      for (const s of r.shares) console.log(`${pct(s.share).padStart(5)} %  ${s.component}`);
    }
    return r;
  }
  const dir = o.dir as string;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(dir, f));
  if (files.length === 0) throw new Error(`no .cpuprofile files in ${dir}`);
  const r = summarise(files);
  if (o.json) console.log(JSON.stringify(r, null, 2));
  else {
    console.log(
      `${files.length} profiles, ${(r.totalMs / 1000).toFixed(1)} s of samples while transactions were admitted`,
    );
    for (const s of r.shares) console.log(`${pct(s.share).padStart(5)} %  ${s.component}`);
  }
  return r;
}

function pct(x: number): string {
  return (100 * x).toFixed(1);
}
