import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { freeListenPort, until as waitUntil } from "@custos/utils";
import { afterAll, describe, expect, it } from "vitest";
import * as testnet from "../../src/index.js";
import { CLI } from "../helpers.js";

/**
 * Runs the README's command blocks as a person following it in order would, and fails when the
 * README and the program disagree. A block runs when the line before its fence is
 * `<!-- readme-test: NAME [| 0x<placeholder> = /regex/]... -->`; `<!-- readme-test: file PATH -->`
 * before a listing means the listing is that file, exactly.
 *
 * How the commands are read (the README's "Development" section says the same):
 * - every block runs in one bash session (the user's second shell) in a fresh temporary
 *   directory that stands in for the repository root (the contract examples are copied there);
 *   `npx custos` is this checkout's CLI;
 * - `npm install` and `npm test` are not run (they are what runs this test); `npm start` runs
 *   the root package.json's `start` script;
 * - ports: the testnet's 8545-8549 (RPC) and 8645-8649 (libp2p) move to a free range, any other
 *   127.0.0.1 port to a free port of its own, in commands and in claims alike; `node start --home
 *   DIR` listens on the port DIR/config.json names, moved the same way (so a laptop chain that
 *   took the testnet's port would fail here as it would for a user);
 * - a command's comment (on its line or on comment lines right after it) makes claims:
 *   "quoted text" appears in its output (stdout or stderr); `{ "key": value }` pairs with literal
 *   values are fields of its JSON output; `exits N` is its exit status (0 when not said);
 * - a command whose comment says `Ctrl-C stops it` runs in the background until its claims hold;
 *   a command ending with `&` runs in the background and its claims must hold by the block's end;
 * - `0x<name>` (or `<name>`) takes the value the marker's regular expression captures in the most
 *   recent output (of this block or an earlier one) where it matches;
 * - a `transcript` block (`<!-- readme-test: NAME transcript ... -->`) is a terminal session: a
 *   line starting with `$ ` is a command (a trailing `\` continues it on the next line), the lines
 *   after it are everything it printed (stdout, then stderr), and must be, line for line, with
 *   what differs from run to run allowed to differ: `0x` + hex and other long hex strings (any of
 *   the same length), block times (`2026-12-02 08:27`), the numbers after `block` and `height`,
 *   and whatever `…` stands for.
 * Every wait is bounded; nothing sleeps a guessed time.
 */

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const START_SCRIPT = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).scripts.start as string;
const COMMAND_TIMEOUT_MS = 60_000;
const BACKGROUND_TIMEOUT_MS = 90_000;

interface Block {
  name: string;
  /** A terminal session: `$ ` commands followed by their output (see above). */
  transcript: boolean;
  /** The file a listing must equal (`file PATH` markers). */
  file?: string;
  placeholders: { name: string; re: RegExp }[];
  body: string;
}

interface Claims {
  texts: string[];
  json: [string, unknown][];
  status: number;
}

interface Command {
  text: string;
  comment: string;
  background: "none" | "until-claims" | "ampersand";
  /** In a transcript: what the command printed, as the README shows it. */
  expected?: string[];
}

function blocks(): Block[] {
  const out: Block[] = [];
  const re = /<!-- readme-test: ([^\n]*?) -->\n```[a-z]*\n([\s\S]*?)```/g;
  for (const m of README.matchAll(re)) {
    const [head, ...rest] = (m[1] as string).split("|").map((x) => x.trim());
    const placeholders = rest.map((p) => {
      const pm = /^((?:0x)?<[^>]+>) = \/(.+)\/$/.exec(p);
      if (!pm) throw new Error(`bad placeholder in marker: ${p}`);
      return { name: pm[1] as string, re: new RegExp(pm[2] as string) };
    });
    const file = /^file (\S+)$/.exec(head as string)?.[1];
    const transcript = / transcript$/.test(head as string);
    out.push({
      name: (head as string).replace(/ transcript$/, ""),
      transcript,
      ...(file ? { file } : {}),
      placeholders,
      body: m[2] as string,
    });
  }
  return out;
}

/** Where a shell comment starts on a line (a # after whitespace, outside quotes), or -1. */
function commentStart(line: string): number {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "\\") i++;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1] as string))) return i;
  }
  return -1;
}

/** A block's commands: continuation lines joined, each with the comments that describe it. */
function commands(body: string): Command[] {
  const out: Command[] = [];
  const lines = body.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.trim() === "") continue;
    if (line.trim().startsWith("#")) {
      const last = out.at(-1);
      if (!last) throw new Error(`a comment line before any command: ${line}`);
      last.comment += ` ${line.trim().slice(1)}`;
      continue;
    }
    let text = "";
    let comment = "";
    let current = line;
    for (;;) {
      const at = commentStart(current);
      const code = at < 0 ? current : current.slice(0, at);
      if (at >= 0) comment += ` ${current.slice(at + 1)}`;
      if (code.trimEnd().endsWith("\\") && at < 0) {
        text += `${code.trimEnd().slice(0, -1)} `;
        current = lines[++i] ?? "";
        continue;
      }
      text += code;
      break;
    }
    text = text.trim();
    const background = /Ctrl-C stops it/.test(comment)
      ? "until-claims"
      : text.endsWith("&")
        ? "ampersand"
        : "none";
    out.push({ text: background === "ampersand" ? text.slice(0, -1).trim() : text, comment, background });
  }
  return out;
}

/** A transcript's commands, each with the output the README shows for it. */
function transcript(body: string): Command[] {
  const out: Command[] = [];
  const lines = body.replace(/\n$/, "").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.startsWith("$ ")) {
      const last = out.at(-1);
      if (!last) throw new Error(`a transcript starts with output, not a command: ${line}`);
      last.expected?.push(line);
      continue;
    }
    let text = "";
    let comment = "";
    let current = line.slice(2);
    for (;;) {
      const at = commentStart(current);
      const code = at < 0 ? current : current.slice(0, at);
      if (at >= 0) comment += ` ${current.slice(at + 1)}`;
      if (code.trimEnd().endsWith("\\") && at < 0) {
        text += `${code.trimEnd().slice(0, -1)} `;
        current = lines[++i] ?? "";
        continue;
      }
      text += code;
      break;
    }
    out.push({ text: text.trim(), comment, background: "none", expected: [] });
  }
  return out;
}

/**
 * A transcript line as a pattern: what varies from run to run may differ (see the top of this
 * file), everything else must be as written.
 */
function linePattern(expected: string): RegExp {
  const literal = (x: string) => x.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const token =
    /(…)|\b(0x[0-9a-f]+)|\b([0-9a-f]{32,})\b|(\d{4}-\d{2}-\d{2} \d{2}:\d{2})|\b((?:block|height) )\d+/g;
  let re = "";
  let last = 0;
  for (const m of expected.matchAll(token)) {
    re += literal(expected.slice(last, m.index));
    if (m[1]) re += ".*?";
    else if (m[2]) re += `0x[0-9a-f]{${m[2].length - 2}}`;
    else if (m[3]) re += `[0-9a-f]{${m[3].length}}`;
    else if (m[4]) re += "\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}";
    else re += `${m[5]}\\d+`;
    last = (m.index as number) + m[0].length;
  }
  return new RegExp(`^${re}${literal(expected.slice(last))}$`);
}

/** Where a command's output differs from its transcript, or undefined when it agrees. */
function transcriptDiff(expected: string[], actual: string): string | undefined {
  const got = actual
    .replace(/\s+$/, "")
    .split("\n")
    .map((l) => l.trimEnd());
  if (got.length === 1 && got[0] === "") got.pop();
  const want = expected.map((l) => l.trimEnd());
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    const w = want[i];
    const g = got[i];
    if (w === undefined || g === undefined || !linePattern(w).test(g))
      return `line ${i + 1}:\n  README: ${w ?? "(nothing more)"}\n  output: ${g ?? "(nothing more)"}`;
  }
  return undefined;
}

function claimsOf(comment: string): Claims {
  const status = Number(/exits (\d+)/.exec(comment)?.[1] ?? 0);
  const json: [string, unknown][] = [];
  const brace = /\{[^{}]*\}/.exec(comment);
  let rest = comment;
  if (brace) {
    rest = comment.replace(brace[0], "");
    for (const m of brace[0].matchAll(
      /"([A-Za-z_][A-Za-z0-9_]*)":\s*("(?:[^"\\]|\\.)*"|-?\d+|null|true|false)/g,
    )) {
      const value = JSON.parse(m[2] as string);
      if (typeof value === "string" && /…|\.\.\./.test(value)) continue; // elided: any value
      json.push([m[1] as string, value]);
    }
  }
  const texts = [...rest.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => (m[1] as string).replace(/\\"/g, '"'));
  return { texts, json, status };
}

const until = <T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<NonNullable<T>> =>
  waitUntil(probe, { what, timeoutMs: ms, everyMs: 100 });

interface Ran {
  n: number;
  command: string;
  status: number | undefined;
  out: () => string;
  err: () => string;
}

/** One bash session; every command's output goes to files, its exit status comes back on a marker line. */
class Session {
  private readonly bash: ChildProcess;
  private readonly exited: Promise<unknown>;
  private buffer = "";
  private readonly waiters = new Map<string, (line: string) => void>();
  private n = 0;
  readonly ran: Ran[] = [];

  constructor(
    readonly cwd: string,
    readonly runDir: string,
    env: Record<string, string>,
  ) {
    this.bash = spawn("bash", ["--noprofile", "--norc"], {
      cwd,
      env,
      detached: true, // its own process group: everything it started is stopped together
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.exited = new Promise((r) => this.bash.once("exit", r));
    this.bash.stdout?.on("data", (d) => {
      this.buffer += String(d);
      let nl = this.buffer.indexOf("\n");
      while (nl >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const key = line.split(" ").slice(0, 2).join(" ");
        this.waiters.get(key)?.(line);
        this.waiters.delete(key);
        nl = this.buffer.indexOf("\n");
      }
    });
  }

  private file(n: number, ext: string): string {
    return join(this.runDir, `${n}.${ext}`);
  }

  private read(n: number, ext: string): string {
    try {
      return readFileSync(this.file(n, ext), "utf8");
    } catch {
      return "";
    }
  }

  private marker(key: string, ms: number, command: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(key);
        reject(new Error(`${command}\n  did not finish within ${ms / 1000} s`));
      }, ms);
      this.waiters.set(key, (line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  /** Runs `command` to its end (foreground) or starts it (background); returns its record. */
  async run(command: string, background: boolean): Promise<Ran> {
    const n = ++this.n;
    const ran: Ran = {
      n,
      command,
      status: undefined,
      out: () => this.read(n, "out"),
      err: () => this.read(n, "err"),
    };
    this.ran.push(ran);
    const redirect = `>"${this.file(n, "out")}" 2>"${this.file(n, "err")}" </dev/null`;
    if (background) {
      const started = this.marker(`__bg__ ${n}`, 10_000, command);
      this.bash.stdin?.write(
        `{ { ${command}\n} ${redirect}; echo "$?" >"${this.file(n, "rc")}"; } &\necho "__bg__ ${n}"\n`,
      );
      await started;
    } else {
      const done = this.marker(`__rc__ ${n}`, COMMAND_TIMEOUT_MS, command);
      this.bash.stdin?.write(`{ ${command}\n} ${redirect}\necho "__rc__ ${n} $?"\n`);
      ran.status = Number((await done).split(" ")[2]);
    }
    return ran;
  }

  /** A background command's exit status once it has ended, else undefined. */
  ended(ran: Ran): number | undefined {
    const rc = this.read(ran.n, "rc").trim();
    return rc === "" ? undefined : Number(rc);
  }

  async close(): Promise<void> {
    if (this.bash.pid === undefined) return;
    const signal = (s: NodeJS.Signals) => {
      try {
        process.kill(-(this.bash.pid as number), s);
      } catch {
        // gone
      }
    };
    signal("SIGTERM"); // node start and testnet up --attach stop cleanly on SIGTERM
    this.bash.stdin?.end();
    const timer = setTimeout(() => signal("SIGKILL"), 20_000);
    await this.exited;
    // the group may outlive bash for a moment: wait until nothing of it is left
    await until("the session's processes to exit", 25_000, async () => {
      try {
        process.kill(-(this.bash.pid as number), 0);
        return undefined;
      } catch {
        return true;
      }
    });
    clearTimeout(timer);
  }
}

describe("the README, followed as written", () => {
  let dir: string;
  let runDir: string;
  let session: Session | undefined;

  afterAll(async () => {
    if (dir) await testnet.down(join(dir, ".testnet")).catch(() => {});
    await session?.close();
    if (!process.env.KEEP_TMP) {
      if (dir) await rm(dir, { recursive: true, force: true });
      if (runDir) await rm(runDir, { recursive: true, force: true });
    }
  }, 60_000);

  it("lists counter.ts exactly as the file is", async () => {
    const listings = blocks().filter((b) => b.file);
    expect(listings.map((b) => b.file)).toContain("contracts/sdk/examples/counter.ts");
    for (const b of listings)
      expect(b.body, b.file).toBe(await readFile(join(ROOT, b.file as string), "utf8"));
  });

  it("quick start, the laptop chain, contracts, governance, prepaid cards and audit run as written, on a fresh home", async () => {
    const runnable = blocks().filter((b) => !b.file);
    expect(runnable.map((b) => b.name)).toEqual([
      "quick-start",
      "quick-start-shell",
      "laptop",
      "laptop-shell",
      "contracts",
      "governance",
      "prepaid-demo",
      "prepaid-onboard",
      "prepaid-buy",
      "prepaid-cards",
      "prepaid-refunds",
      "prepaid-time",
      "prepaid-regulator",
      "prepaid-closure",
      "prepaid-check",
      "audit",
    ]);

    dir = await mkdtemp(join(tmpdir(), "custos-readme-"));
    runDir = await mkdtemp(join(tmpdir(), "custos-readme-run-"));
    await mkdir(join(dir, "contracts", "sdk"), { recursive: true });
    await cp(join(ROOT, "contracts", "sdk", "examples"), join(dir, "contracts", "sdk", "examples"), {
      recursive: true,
    });
    // `npx custos` from the repository root is this checkout's CLI
    await mkdir(join(runDir, "bin"));
    const [node, bin] = CLI as [string, string];
    await writeFile(
      join(runDir, "bin", "npx"),
      `#!/bin/sh\nif [ "$1" = custos ]; then shift; exec "${node}" "${bin}" "$@"; fi\necho "npx $1: only npx custos runs in the README test" >&2\nexit 127\n`,
    );
    await chmod(join(runDir, "bin", "npx"), 0o755);

    // ports: the testnet's range moves to a free one; every other port named to a free port
    const base = await testnet.freeBasePort(5);
    const moved = new Map<number, number>();
    for (let i = 0; i < 5; i++) {
      moved.set(8545 + i, base + i);
      moved.set(8645 + i, base + 100 + i);
    }
    const move = async (port: number) => {
      if (!moved.has(port)) moved.set(port, await freeListenPort());
      return moved.get(port) as number;
    };
    for (const m of README.matchAll(/127\.0\.0\.1:(\d{2,5})/g)) await move(Number(m[1]));
    const movePorts = (text: string) =>
      text.replace(/127\.0\.0\.1:(\d{2,5})/g, (all, p: string) =>
        moved.has(Number(p)) ? `127.0.0.1:${moved.get(Number(p))}` : all,
      );

    session = new Session(dir, runDir, {
      PATH: `${join(runDir, "bin")}:${process.env.PATH ?? ""}`,
      HOME: dir,
      NO_COLOR: "1",
      ...(process.env.CUSTOS_SM2_BACKEND ? { CUSTOS_SM2_BACKEND: process.env.CUSTOS_SM2_BACKEND } : {}),
    });
    const s = session;

    const latestValue = (p: { re: RegExp }) =>
      [...s.ran]
        .reverse()
        .map((r) => p.re.exec(`${r.out()}\n${r.err()}`)?.[1])
        .find((v) => v !== undefined);
    const seen = (p: { re: RegExp }) => latestValue(p) !== undefined;
    /** A claim is a text, or a pattern where it names a value still to come (0x<...>). */
    const holds = (claim: string, output: string) =>
      /0x<[^>]+>/.test(claim)
        ? new RegExp(
            claim
              .split(/0x<[^>]+>/)
              .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
              .join("0x[0-9a-f]+"),
          ).test(output)
        : output.includes(claim);

    const transcriptFailures: string[] = [];
    for (const block of runnable) {
      const pending: { ran: Ran; claims: Claims }[] = [];
      const printed: string[] = [];
      for (const c of block.transcript ? transcript(block.body) : commands(block.body)) {
        if (/^npm (install|test)\b/.test(c.text)) continue;
        let text = c.text.replace(/^npm start\b/, `npx ${START_SCRIPT} --base-port ${base}`);
        let comment = movePorts(c.comment);
        text = movePorts(text);
        for (const p of block.placeholders) {
          // a placeholder only in the comment, before any output gives it: the command prints it
          if (!text.includes(p.name) && (!comment.includes(p.name) || !seen(p))) continue;
          const value = latestValue(p);
          if (value === undefined)
            throw new Error(`[${block.name}] no output so far gives ${p.name} (${p.re})`);
          text = text.split(p.name).join(value);
          comment = comment.split(p.name).join(value);
        }
        const home = /\bnode start --home (\S+)/.exec(text)?.[1];
        if (home && !/--rpc-listen/.test(text)) {
          const listen = JSON.parse(await readFile(join(dir, home, "config.json"), "utf8")).rpc
            .listen as string;
          text += ` --rpc-listen 127.0.0.1:${await move(Number(listen.split(":").at(-1)))}`;
        }
        const claims = claimsOf(comment);
        const where = `[${block.name}] ${c.text}`;
        const ran = await s.run(text, c.background !== "none");
        if (c.background === "until-claims") {
          // a server: up once its claims show; it must not have ended
          await until(
            `${where}\n  claims ${JSON.stringify(claims.texts)}`,
            BACKGROUND_TIMEOUT_MS,
            async () => {
              const ended = s.ended(ran);
              if (ended !== undefined)
                throw new Error(`${where}\n  ended with status ${ended}:\n${ran.out()}${ran.err()}`);
              const all = `${ran.out()}${ran.err()}`;
              return claims.texts.every((t) => holds(t, all)) ? true : undefined;
            },
          );
          continue;
        }
        if (c.background === "ampersand") {
          pending.push({ ran, claims });
          continue;
        }
        const output = `${ran.out()}${ran.err()}`;
        if (c.expected) {
          // what the session printed, in the README's form (README_TRANSCRIPTS=DIR keeps it)
          printed.push(`$ ${c.text}${c.comment ? `  #${c.comment}` : ""}`, output.replace(/\s+$/, ""));
          const diff = transcriptDiff(c.expected, output);
          if (diff) transcriptFailures.push(`${where}\n${diff}`);
        }
        expect(ran.status, `${where}\n${output}`).toBe(claims.status);
        for (const t of claims.texts)
          expect(holds(t, output), `${where}: claims "${t}" in\n${output}`).toBe(true);
        if (claims.json.length > 0) {
          const doc = JSON.parse(ran.out());
          for (const [k, v] of claims.json)
            expect(doc[k], `${where}: claims "${k}": ${JSON.stringify(v)}`).toEqual(v);
        }
      }
      if (block.transcript && process.env.README_TRANSCRIPTS)
        await writeFile(join(process.env.README_TRANSCRIPTS, `${block.name}.txt`), `${printed.join("\n")}\n`);
      for (const { ran, claims } of pending) {
        const where = `[${block.name}] ${ran.command} &`;
        await until(`${where}\n  claims ${JSON.stringify(claims.texts)}`, 30_000, async () => {
          const all = `${ran.out()}${ran.err()}`;
          return claims.texts.every((t) => holds(t, all)) ? true : undefined;
        });
      }
    }
    expect(transcriptFailures, "the README's transcripts and what the commands printed").toEqual([]);
    // everything the steps created in the repository root is ignored by git (keys, passwords, ledgers)
    await testnet.down(join(dir, ".testnet"));
    await s.close();
    const created: string[] = [];
    const walk = async (d: string) => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) await walk(p);
        else created.push(relative(dir, p));
      }
    };
    for (const e of await readdir(dir))
      if (e !== "contracts") await walk(join(dir, e)).catch(() => created.push(e)); // the examples, copied in
    expect(created).toEqual(expect.arrayContaining(["h/dev-password", "h/keys/operator.json", "counter.js"]));
    const git = spawnSync("git", ["check-ignore", "--no-index", "--stdin"], {
      cwd: ROOT,
      input: created.join("\n"),
      encoding: "utf8",
    });
    const ignored = new Set(git.stdout.split("\n").filter(Boolean));
    expect(created.filter((f) => !ignored.has(f))).toEqual([]);
    expect(existsSync(join(dir, "h", "run.json"))).toBe(false); // the node stopped cleanly
  }, 900_000);
});
