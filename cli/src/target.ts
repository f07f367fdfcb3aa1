import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { CustosError } from "@custos/utils";
import { UsageError } from "./io.js";

/**
 * Which node a command talks to and whose demo members it can name. A command that talks to a
 * node takes its RPC URL from, in this order:
 *
 * 1. `--rpc URL`;
 * 2. `--home DIR`: the node of that home, at the URL its running `custos node start` wrote to
 *    DIR/run.json, else at config.json's rpc.listen;
 * 3. `--dir DIR`: the testnet in DIR (testnet.json), at its first running validator;
 * 4. the CUSTOS_RPC environment variable;
 * 5. http://127.0.0.1:8545.
 *
 * Demo members can be named instead of given by address (`--to consumer-1`) or key file
 * (`--key operator`) when a list of them is at hand: DIR/dev-accounts.json of `--home DIR`
 * (written by `custos init --dev`), DIR/testnet.json of `--dir DIR`, or the file named by the
 * CUSTOS_ACCOUNTS environment variable (either shape). There is no implicit default: a list
 * found by accident could name the members of another chain. The list's chainId must be the
 * node's (ACCOUNTS_OTHER_CHAIN otherwise), so a name never resolves to another chain's member.
 */
export interface TargetOpts {
  rpc?: string;
  home?: string;
  dir?: string;
}

export const DEFAULT_RPC = "http://127.0.0.1:8545";

/** What `custos node start` writes to HOME/run.json while it runs (and removes when it stops). */
export interface RunFile {
  pid: number;
  rpc: string;
  startedAt: string;
}

export const runFileOf = (home: string) => join(home, "run.json");

function alive(pid: unknown): boolean {
  if (typeof pid !== "number" || !Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === "EPERM";
  }
}

export function readJson(file: string, what: string): any {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new CustosError("FILE_NOT_READABLE", `cannot read ${file} (${what})`, {}, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new CustosError("FILE_INVALID", `${file} is not JSON (${what})`, {}, { cause });
  }
}

/** The RPC URL of the node of `home` if it runs now (its run file names a live process). */
export function runningRpc(home: string): string | undefined {
  const run = runFileOf(home);
  if (!existsSync(run)) return undefined;
  try {
    const r = JSON.parse(readFileSync(run, "utf8")) as Partial<RunFile>;
    if (typeof r.rpc === "string" && alive(r.pid)) return r.rpc;
  } catch {
    // a torn or stale run file: not running as far as anyone can tell
  }
  return undefined;
}

/** The URL a node of `home` answers on: its run file while it runs, else its config. */
export function homeRpc(home: string): string {
  const running = runningRpc(home);
  if (running) return running;
  const cfg = readJson(join(home, "config.json"), `--home ${home} is not a node home`);
  const listen = String(cfg?.rpc?.listen ?? "127.0.0.1:8545");
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  if (!m || m[2] === "0")
    throw new CustosError(
      "NODE_NOT_RUNNING",
      `the node of ${home} is not running and config.json rpc.listen (${listen}) names no port to reach it on`,
    );
  const host = m[1] === "0.0.0.0" ? "127.0.0.1" : m[1] === "[::]" ? "[::1]" : m[1];
  return `${cfg?.rpc?.tls ? "https" : "http"}://${host}:${m[2]}`;
}

/** The RPC URL of a testnet's first validator that runs (else its first validator). */
export function testnetRpc(dir: string): string {
  const t = readJson(join(dir, "testnet.json"), `--dir ${dir} holds no testnet`);
  const validators = (Array.isArray(t?.nodes) ? t.nodes : []).filter(
    (n: { role?: string; rpc?: unknown }) => n.role === "validator" && typeof n.rpc === "string",
  );
  const node = validators.find((n: { pid?: unknown }) => alive(n.pid)) ?? validators[0];
  if (!node) throw new CustosError("TESTNET_INVALID", `${join(dir, "testnet.json")} lists no validator`);
  return node.rpc as string;
}

export function rpcUrl(o: TargetOpts): string {
  if (o.rpc !== undefined) return o.rpc;
  if (o.home !== undefined) return homeRpc(o.home);
  if (o.dir !== undefined) return testnetRpc(o.dir);
  return process.env.CUSTOS_RPC ?? DEFAULT_RPC;
}

export interface Account {
  name: string;
  role?: string;
  address: string;
  keyFile?: string;
}

export interface AccountList {
  /** Where the list came from, for messages. */
  source: string;
  chainId?: string;
  accounts: Account[];
}

/** The demo members at hand (see TargetOpts), or undefined when no list is named. */
export function accountList(o: TargetOpts): AccountList | undefined {
  let file: string | undefined;
  if (o.home !== undefined) file = join(o.home, "dev-accounts.json");
  else if (o.dir !== undefined) file = join(o.dir, "testnet.json");
  else if (process.env.CUSTOS_ACCOUNTS) file = process.env.CUSTOS_ACCOUNTS;
  if (file === undefined) return undefined;
  if (!existsSync(file)) {
    if (o.home !== undefined) return { source: file, accounts: [] }; // a home without --dev
    throw new CustosError("FILE_NOT_READABLE", `cannot read ${file}: no list of accounts there`);
  }
  const doc = readJson(file, "a list of accounts");
  if (!Array.isArray(doc?.accounts))
    throw new CustosError(
      "FILE_INVALID",
      `${file} has no "accounts" list (dev-accounts.json or testnet.json)`,
    );
  const base = dirname(resolve(file));
  return {
    source: file,
    ...(typeof doc.chainId === "string" ? { chainId: doc.chainId } : {}),
    accounts: (doc.accounts as Account[])
      .filter((a) => typeof a?.name === "string" && typeof a.address === "string")
      .map((a) => ({
        ...a,
        // key files are recorded absolute; an older relative one was relative to where init ran
        ...(typeof a.keyFile === "string"
          ? { keyFile: isAbsolute(a.keyFile) || existsSync(a.keyFile) ? a.keyFile : resolve(base, a.keyFile) }
          : {}),
      })),
  };
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Resolves names on the command line to demo members; remembers which list it used. */
export class Names {
  private list: AccountList | undefined | null = null;
  /** Set once a name was resolved: the list's chainId, to be checked against the node's. */
  usedChainId: string | undefined;
  usedSource: string | undefined;

  constructor(private readonly o: TargetOpts) {}

  private accounts(): AccountList | undefined {
    if (this.list === null) this.list = accountList(this.o);
    return this.list;
  }

  private find(name: string, what: string): Account {
    const list = this.accounts();
    if (list === undefined)
      throw new UsageError(
        `${what} ${JSON.stringify(name)} is not an address; to use demo members' names, give --home DIR (dev-accounts.json), --dir DIR (testnet.json) or CUSTOS_ACCOUNTS=FILE`,
      );
    const a = list.accounts.find((x) => x.name === name);
    if (!a)
      throw new UsageError(
        `${what} ${JSON.stringify(name)}: no such member in ${list.source}${
          list.accounts.length ? ` (${list.accounts.map((x) => x.name).join(", ")})` : ""
        }`,
      );
    this.usedChainId = list.chainId;
    this.usedSource = list.source;
    return a;
  }

  /** An address given as 0x + 40 hex digits, or a demo member's name. */
  address(v: string, flag: string): string {
    if (/^0x/i.test(v)) {
      if (!/^0x[0-9a-fA-F]{40}$/.test(v))
        throw new UsageError(`${flag} must be an address (0x + 40 hex digits)`);
      return v.toLowerCase();
    }
    if (!NAME_RE.test(v))
      throw new UsageError(`${flag} must be an address (0x + 40 hex digits) or a demo member's name`);
    return this.find(v, flag).address;
  }

  /** A keystore file, or the name of a demo member whose key file the list records. */
  keyFile(v: string): string {
    if (existsSync(v) || !NAME_RE.test(v) || this.accounts() === undefined) return v;
    const a = this.find(v, "--key");
    if (a.keyFile === undefined)
      throw new UsageError(`--key ${v}: ${this.usedSource} records no key file for it`);
    return a.keyFile;
  }

  /** The demo member's name of an address, when a list is at hand (for tables). */
  nameOf(address: string): string | undefined {
    try {
      return this.accounts()?.accounts.find((x) => x.address === address)?.name;
    } catch {
      return undefined;
    }
  }

  /** Throws unless the node's chain is the one the resolved names belong to. */
  checkChain(nodeChainId: string): void {
    if (this.usedChainId !== undefined && this.usedChainId !== nodeChainId)
      throw new CustosError(
        "ACCOUNTS_OTHER_CHAIN",
        `the names come from ${this.usedSource} (chain ${this.usedChainId}) but the node is on chain ${nodeChainId}; give the node's --home/--dir, or addresses`,
      );
  }
}
