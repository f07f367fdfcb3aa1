import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { formatFen } from "@custos/client";
import { CustosError, fromHex } from "@custos/utils";

/** The code of every wrong command line (commander's own errors too); exit status 2. */
export const USAGE = "USAGE";

/** Thrown for a wrong command line; exits with status 2. */
export class UsageError extends CustosError<typeof USAGE> {
  constructor(message: string) {
    super(USAGE, message);
  }
}

/**
 * Amounts in the node's messages are fen ("6000000 fen exceeds ... 5000000 fen"); the command
 * line speaks yuan, so the CLI shows them in yuan ("60000.00 yuan exceeds ... 50000.00 yuan").
 * Receipts and JSON keep the node's fen.
 */
export function inYuan(message: string): string {
  return message.replace(/\b(\d{1,30}) fen\b/g, (_m, fen: string) => `${formatFen(BigInt(fen))} yuan`);
}

/**
 * Reports a failure on stderr as one line: `error: MESSAGE (CODE)`, or with --json one JSON
 * document `{"error": {"code", "message"}}` (stdout stays for the result, which a failed
 * transaction still prints).
 */
export function printError(json: boolean, code: string, message: string): void {
  const text = inYuan(message)
    .replace(/\s*\n\s*/g, " ")
    .trim();
  process.stderr.write(
    json ? `${JSON.stringify({ error: { code, message: text } })}\n` : `error: ${text} (${code})\n`,
  );
}

/** Writes one JSON document (bigints as decimal strings) or human lines to stdout. */
export function output(json: boolean, doc: Record<string, unknown>, human: string): void {
  if (json) {
    process.stdout.write(
      `${JSON.stringify(doc, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2)}\n`,
    );
  } else {
    process.stdout.write(`${human}\n`);
  }
}

/** Bytes from `--in FILE` or `--hex HEX`; exactly one must be given. */
export async function readInput(opts: { in?: string; hex?: string }): Promise<Uint8Array> {
  if ((opts.in === undefined) === (opts.hex === undefined)) {
    throw new UsageError("give the data with exactly one of --in FILE or --hex HEX");
  }
  if (opts.hex !== undefined) return parseHexArg(opts.hex, "--hex");
  try {
    return new Uint8Array(await readFile(opts.in as string));
  } catch (cause) {
    throw new CustosError("FILE_NOT_READABLE", `cannot read ${opts.in}`, {}, { cause });
  }
}

export function parseHexArg(value: string, flag: string): Uint8Array {
  try {
    return fromHex(value.trim());
  } catch {
    throw new UsageError(`${flag} must be hex (whole bytes, optional 0x)`);
  }
}

/**
 * The keystore password: `--password-file FILE` (one trailing newline dropped), else the
 * CUSTOS_PASSWORD environment variable, else a prompt on a terminal. Never from an argument.
 */
export async function readPassword(opts: { passwordFile?: string }, confirm = false): Promise<string> {
  let pw: string | undefined;
  if (opts.passwordFile !== undefined) {
    try {
      pw = (await readFile(opts.passwordFile, "utf8")).replace(/\r?\n$/, "");
    } catch (cause) {
      throw new CustosError(
        "FILE_NOT_READABLE",
        `cannot read password file ${opts.passwordFile}`,
        {},
        { cause },
      );
    }
  } else if (process.env.CUSTOS_PASSWORD !== undefined) {
    pw = process.env.CUSTOS_PASSWORD;
  } else if (process.stdin.isTTY) {
    pw = await prompt("Keystore password: ");
    if (confirm && (await prompt("Repeat password: ")) !== pw) {
      throw new CustosError("PASSWORD_MISMATCH", "the two passwords differ");
    }
  } else {
    throw new CustosError("NO_PASSWORD", "no password: use --password-file FILE or set CUSTOS_PASSWORD");
  }
  if (pw.length === 0) throw new CustosError("KEYSTORE_EMPTY_PASSWORD", "the password is empty");
  return pw;
}

async function prompt(question: string): Promise<string> {
  let muted = false;
  const sink = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: sink, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(question, resolve));
    muted = true;
    return await answer;
  } finally {
    muted = false;
    rl.close();
    process.stderr.write("\n");
  }
}
