import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { Writable } from "node:stream";
import { CustosError, fromHex } from "@custos/utils";

/** Thrown for a wrong command line; exits with status 2. */
export class UsageError extends CustosError<"USAGE"> {
  constructor(message: string) {
    super("USAGE", message);
  }
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
