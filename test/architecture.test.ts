import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The house rules that a reader can check by looking at imports: no module imports itself back
 * through others, and workspaces depend one way (DESIGN.md §1).
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { workspaces: string[] };

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.ts$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const IMPORT_RE =
  /^(?:import|export)\s[^;]*?from\s+"([^"]+)"|^import\s+"([^"]+)"|await import\("([^"]+)"\)/gm;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2] ?? m[3]) as string);
  return out;
}

/** Workspace name -> its directory, and the workspaces each one's src imports. */
const workspaces = new Map<string, string>();
for (const w of pkg.workspaces) {
  const name = (JSON.parse(readFileSync(join(ROOT, w, "package.json"), "utf8")) as { name: string }).name;
  workspaces.set(name, w);
}

function cycles(graph: Map<string, Set<string>>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (n: string) => {
    state.set(n, "visiting");
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === "visiting") found.push([...stack.slice(stack.indexOf(m)), m]);
      else if (!state.has(m)) visit(m);
    }
    stack.pop();
    state.set(n, "done");
  };
  for (const n of graph.keys()) if (!state.has(n)) visit(n);
  return found;
}

describe("architecture", () => {
  it("no module of any workspace imports itself back through others", () => {
    const graph = new Map<string, Set<string>>();
    for (const w of workspaces.values()) {
      const src = join(ROOT, w, "src");
      let files: string[];
      try {
        files = sources(src);
      } catch {
        continue;
      }
      for (const f of files) {
        const deps = new Set<string>();
        for (const spec of importsOf(f)) {
          if (!spec.startsWith(".")) continue;
          deps.add(resolve(dirname(f), spec.replace(/\.js$/, ".ts")));
        }
        graph.set(f, deps);
      }
    }
    const found = cycles(graph).map((c) => c.map((f) => relative(ROOT, f)).join(" -> "));
    expect(found).toEqual([]);
  });

  it("workspaces depend one way", () => {
    const graph = new Map<string, Set<string>>();
    for (const [name, w] of workspaces) {
      const deps = new Set<string>();
      let files: string[] = [];
      try {
        files = sources(join(ROOT, w, "src"));
      } catch {
        // a workspace without sources (none today)
      }
      for (const f of files)
        for (const spec of importsOf(f)) {
          const dep = [...workspaces.keys()].find((n) => spec === n || spec.startsWith(`${n}/`));
          if (dep && dep !== name) deps.add(dep);
        }
      graph.set(name, deps);
    }
    expect(cycles(graph).map((c) => c.join(" -> "))).toEqual([]);
    // the bottom floor: packages/ never imports the engines or the daemon
    for (const [name, w] of workspaces) {
      if (!w.startsWith("packages/")) continue;
      for (const dep of graph.get(name) ?? [])
        expect(workspaces.get(dep), `${name} -> ${dep}`).toMatch(/^packages\//);
    }
  });
});
