import { readFile } from "node:fs/promises";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { type Genesis, parseGenesis } from "@custos/types";
import { CustosError, errorMessage, type Logger } from "@custos/utils";
import type { HomeErrorCode, NodeConfig } from "./config.js";

/** What a node reads from its home before anything starts: genesis and its SM2 key. */

export async function readGenesis(path: string): Promise<Genesis> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, "utf8"));
  } catch (cause) {
    throw new CustosError<HomeErrorCode>("GENESIS_INVALID", `cannot read ${path} as JSON`, {}, { cause });
  }
  return parseGenesis(json);
}

export async function loadNodeKey(
  config: NodeConfig,
  password?: string,
): Promise<{ key: Sm2KeyPair; password: string }> {
  let pw = password;
  if (pw === undefined && config.nodeKey.passwordFile) {
    pw = (await readFile(config.nodeKey.passwordFile, "utf8")).replace(/\r?\n$/, "");
  }
  pw ??= process.env.CUSTOS_PASSWORD;
  if (pw === undefined) {
    throw new CustosError<HomeErrorCode>(
      "NO_PASSWORD",
      "the node key needs its password: --password-file FILE or CUSTOS_PASSWORD",
    );
  }
  return { key: await loadKeystoreFile(config.nodeKey.file, pw), password: pw };
}

/** A refusal at start-up goes to node.log too, with its code and cause, not only to the terminal. */
export function startFailed(log: Logger, err: unknown): void {
  const e = err as { code?: string; cause?: unknown };
  log.error("node failed to start", {
    code: e.code ?? "INTERNAL",
    error: errorMessage(err),
    ...(e.cause ? { cause: errorMessage(e.cause) } : {}),
  });
}
