import { rmSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { CustosClient, formatFen, parseYuan, type ReceiptView, Wallet } from "@custos/client";
import { encode } from "@custos/codec";
import { loadKeystoreFile, type Sm2KeyPair } from "@custos/crypto";
import { CustosError } from "@custos/utils";
import type { Command } from "commander";
import { output, readPassword, UsageError } from "../io.js";
import { Names, type RunFile, rpcUrl, runFileOf, type TargetOpts } from "../target.js";

export interface RpcOpts extends TargetOpts {
  json?: boolean;
  apiKey?: string;
  /** A member's keystore (or demo name) that signs every RPC request (or CUSTOS_SIGNER). */
  signer?: string;
  /** Sign every RPC request with the --key member's SM2 key (or CUSTOS_SIGN_REQUESTS=1). */
  signRequests?: boolean;
  key?: string;
  passwordFile?: string;
}

/** The node a command talks to and the demo members it may name (see target.ts). */
export interface Target {
  client: CustosClient;
  names: Names;
  /** The --key member's key, loaded once (for signing transactions and, asked to, requests). */
  memberKey(): Promise<Sm2KeyPair>;
}

/** `timeoutMs`: how long one request may take (default the client's 30 s). */
export function target(o: RpcOpts, timeoutMs?: number): Target {
  const apiKey = o.apiKey ?? process.env.CUSTOS_API_KEY;
  const names = new Names(o);
  const loaded = new Map<string, Promise<Sm2KeyPair>>();
  const load = (ref: string) => {
    let p = loaded.get(ref);
    if (!p) {
      p = readPassword(o).then((pw) => loadKeystoreFile(names.keyFile(ref), pw));
      loaded.set(ref, p);
    }
    return p;
  };
  const memberKey = () => {
    if (o.key === undefined) throw new UsageError("this needs --key (a member's keystore or demo name)");
    return load(o.key);
  };
  // who signs the requests, if anyone: --signer, CUSTOS_SIGNER, or --key with --sign-requests
  // (CUSTOS_SIGN_REQUESTS=1: every command that has a --key)
  const signWithKey = o.signRequests === true || process.env.CUSTOS_SIGN_REQUESTS === "1";
  const signer = o.signer ?? process.env.CUSTOS_SIGNER ?? (signWithKey ? o.key : undefined);
  const client = new CustosClient(rpcUrl(o), {
    ...(apiKey ? { apiKey } : {}),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    ...(signer !== undefined ? { signer: { key: () => load(signer) } } : {}),
  });
  return { client, names, memberKey };
}

export function client(o: RpcOpts): CustosClient {
  return target(o).client;
}

export const rpcOption = (c: Command) =>
  c
    .option(
      "--rpc <url>",
      "node RPC URL (else from --home or --dir, else CUSTOS_RPC, else http://127.0.0.1:8545)",
    )
    .option("--home <dir>", "a node home: its RPC URL, and its demo members' names (dev-accounts.json)")
    .option("--dir <dir>", "a testnet directory: its first validator's RPC URL and demo members' names")
    .option("--api-key <key>", "RPC API key (or CUSTOS_API_KEY)")
    .option(
      "--signer <key>",
      "sign every RPC request with this member's SM2 key (keystore, or demo name) instead of an API key (or CUSTOS_SIGNER)",
    )
    .option("--json", "print one JSON document (errors too: {error: {code, message}} on stderr)");

export interface SignOpts extends RpcOpts {
  key: string;
  passwordFile?: string;
  wait: boolean;
  timeout: string;
}

export const signOption = (c: Command) =>
  rpcOption(c)
    .requiredOption("--key <file>", "keystore of the sender (or a demo member's name, with --home/--dir)")
    .option(
      "--sign-requests",
      "sign the RPC requests too, with the --key member's SM2 key (or CUSTOS_SIGN_REQUESTS=1)",
    )
    .option("--password-file <file>", "file holding the keystore password (else CUSTOS_PASSWORD)")
    .option("--no-wait", "return once the pool has accepted the transaction")
    .option("--timeout <seconds>", "how long to wait for the receipt", "60");

export async function wallet(_o: SignOpts, t: Target): Promise<Wallet> {
  return new Wallet(t.client, await t.memberKey());
}

/** When names were used, the node must be on their chain (ACCOUNTS_OTHER_CHAIN otherwise). */
export async function checkNames(t: Target): Promise<void> {
  if (t.names.usedChainId !== undefined) t.names.checkChain((await t.client.status()).chainId);
}

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError("--timeout takes a positive number of seconds");
  return n * 1000;
}

/** Sends, waits, prints; a failed transaction exits non-zero with its error code. */
export async function sendAndReport(
  o: SignOpts,
  t: Target,
  call: Parameters<Wallet["send"]>[0],
  human: (r: ReceiptView) => string,
) {
  const w = await wallet(o, t);
  await checkNames(t);
  const r = await w.send(call, { wait: o.wait, timeoutMs: seconds(o.timeout) });
  if (!r.receipt) {
    output(!!o.json, { hash: r.hash, status: "pending" }, `accepted: ${r.hash}`);
    return;
  }
  const doc = { hash: r.hash, blockHeight: r.view?.blockHeight, ...r.receipt };
  output(
    !!o.json,
    doc,
    r.receipt.success
      ? `${human(r.receipt)}\ntx ${r.hash} in block ${r.view?.blockHeight}`
      : `tx ${r.hash} failed in block ${r.view?.blockHeight}`,
  );
  if (!r.receipt.success) {
    throw new CustosError(
      r.receipt.errorCode ?? "TX_FAILED",
      `transaction failed: ${r.receipt.errorMessage ?? r.receipt.errorCode}`,
    );
  }
}

/** An amount in yuan that a transaction moves: at most two decimals, more than zero. */
export function amount(v: string, flag = "--amount"): bigint {
  let fen: bigint;
  try {
    fen = parseYuan(v);
  } catch {
    throw new UsageError(`${flag} ${JSON.stringify(v)}: give yuan with at most two decimals, e.g. 12.34`);
  }
  if (fen <= 0n) throw new UsageError(`${flag} must be more than 0 yuan (got ${JSON.stringify(v)})`);
  return fen;
}

/**
 * Refuses, before anything is signed, a payment to an address that is neither a member nor a
 * contract instance on the node's chain; the e-CNY contract refuses it too (the same code), but
 * a transaction would be signed and committed as failed first.
 */
export async function requireAccount(c: CustosClient, to: string): Promise<void> {
  const exists = async (contract: string, method: string, notFound: string) => {
    try {
      await c.call(contract, method, encode([to]));
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === notFound) return false;
      throw e;
    }
  };
  if (await exists("members", "get", "MEMBER_NOT_FOUND")) return;
  if (await exists("templates", "instance", "CONTRACT_NOT_FOUND")) return;
  throw new CustosError(
    "ECNY_RECIPIENT_NOT_MEMBER",
    `${to} is neither a member of this chain nor a contract: e-CNY sent there could never be spent (nothing was signed)`,
  );
}

export function registerChainCommands(program: Command): void {
  program
    .command("init")
    .description(
      "create a node home: node key and config; --dev adds a one-validator genesis with demo members",
    )
    .requiredOption("--home <dir>", "node home directory")
    .option("--dev", "development chain: genesis, demo members, dev-password and dev-accounts.json")
    .option("--chain-id <id>", "chain id", "custos-dev")
    .option(
      "--rpc-listen <host:port>",
      "RPC address written to config.json (default 127.0.0.1:8540 with --dev, apart from a testnet's 8545-8549; else 127.0.0.1:8545)",
    )
    .option("--password-file <file>", "node key password (not needed with --dev)")
    .option("--json", "print one JSON document")
    .action(
      async (o: {
        home: string;
        dev?: boolean;
        chainId: string;
        rpcListen?: string;
        passwordFile?: string;
        json?: boolean;
      }) => {
        const { initHome } = await import("@custos/node");
        const password =
          o.dev && o.passwordFile === undefined && process.env.CUSTOS_PASSWORD === undefined
            ? undefined
            : await readPassword(o, true);
        const r = await initHome({
          home: o.home,
          dev: !!o.dev,
          chainId: o.chainId,
          rpcListen: o.rpcListen ?? (o.dev ? "127.0.0.1:8540" : "127.0.0.1:8545"),
          ...(password ? { password } : {}),
        });
        const lines = [
          `home:       ${r.home}`,
          ...(r.accounts ? [`chain:      ${r.chainId}`] : []),
          `node key:   ${r.nodeAddress}`,
          `public key: ${r.nodePublicKey}`,
          `peer id:    ${r.peerId}`,
        ];
        if (r.accounts)
          lines.push(
            `genesis:    ${r.genesisFile}`,
            `accounts:   ${r.accounts.length} demo members in ${r.home}/dev-accounts.json, password in ${r.passwordFile}`,
            `start:      custos node start --home ${r.home}`,
          );
        else
          lines.push(
            `genesis:    none yet; ${r.home}/genesis.json must be the chain's genesis file`,
            "next:       share the public key and peer id above with the other members; one of them builds the",
            `            genesis with custos genesis --out genesis.json --validator NAME,PUBLIC_KEY,PEER_ID,MULTIADDR ...;`,
            `            copy it to ${r.home}/genesis.json, then: custos node start --home ${r.home}`,
          );
        output(!!o.json, r as unknown as Record<string, unknown>, lines.join("\n"));
      },
    );

  const node = program.command("node").description("run a node");
  node
    .command("start")
    .description("run a node in the foreground until SIGINT/SIGTERM; prints its RPC URL")
    .requiredOption("--home <dir>", "node home directory")
    .option("--rpc-listen <host:port>", "RPC listen address (overrides config.json)")
    .option(
      "--p2p-listen <multiaddr>",
      "libp2p listen address (default: this validator's address in genesis)",
    )
    .option("--observer", "run as a read-only observer (its key must be a genesis observer's)")
    .option("--join", "a validator that governance is adding: sync from the validators, take part once added")
    .option(
      "--allow-missing-sign-state",
      "start a validator whose data/sign-state (what it last signed) is lost; only if you are sure it signed nothing after its last WAL record",
    )
    .option(
      "--from-snapshot",
      "with an empty ledger: start from the newest verified state snapshot the peers offer, not from genesis (config snapshots.join)",
    )
    .option(
      "--password-file <file>",
      "node key password (else config nodeKey.passwordFile, else CUSTOS_PASSWORD)",
    )
    .option("--json", "print the RPC URL as one JSON document")
    .action(
      async (o: {
        home: string;
        fromSnapshot?: boolean;
        rpcListen?: string;
        p2pListen?: string;
        observer?: boolean;
        join?: boolean;
        allowMissingSignState?: boolean;
        passwordFile?: string;
        json?: boolean;
      }) => {
        const password = o.passwordFile ? await readPassword(o) : undefined;
        const { CustosNode, causeChain } = await import("@custos/node");
        const n = await CustosNode.start({
          home: o.home,
          ...(o.rpcListen ? { rpcListen: o.rpcListen } : {}),
          ...(o.p2pListen ? { p2pListen: o.p2pListen } : {}),
          ...(password ? { password } : {}),
          ...(o.observer ? { observer: true } : {}),
          ...(o.join ? { join: true } : {}),
          ...(o.allowMissingSignState ? { allowMissingSignState: true } : {}),
          ...(o.fromSnapshot ? { fromSnapshot: true } : {}),
        });
        // the signals are taken before the URL is printed: whoever starts the node and stops it as
        // soon as it printed its URL must get a clean stop, not the default SIGTERM death
        const stopped = new Promise<void>((resolve, reject) => {
          const stop = () => {
            process.off("SIGINT", stop);
            process.off("SIGTERM", stop);
            n.stop().then(resolve, reject);
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
          n.onFatal((err) => {
            n.stop().finally(() =>
              reject(new CustosError("NODE_FATAL", `the node stopped: ${causeChain(err)}`)),
            );
          });
        });
        // where commands given --home find this node while it runs (its port may differ from
        // config.json's: --rpc-listen, or port 0)
        const run: RunFile = { pid: process.pid, rpc: n.rpcUrl, startedAt: new Date().toISOString() };
        const runFile = runFileOf(resolve(o.home));
        writeFileSync(runFile, `${JSON.stringify(run, null, 2)}\n`);
        output(
          !!o.json,
          {
            rpc: n.rpcUrl,
            chainId: n.genesis.chainId,
            role: n.role,
            height: n.ledger.head.height,
            p2p: n.network?.addresses ?? [],
          },
          `rpc: ${n.rpcUrl}`,
        );
        try {
          await stopped;
        } finally {
          rmSync(runFile, { force: true });
        }
      },
    );

  node
    .command("reset-ledger")
    .description(
      "move a stopped node's ledger aside (kept for analysis) so that it syncs the chain again from its peers; keys, WAL and sign-state stay",
    )
    .requiredOption("--home <dir>", "node home directory")
    .option("--json", "print what was moved as one JSON document")
    .action(async (o: { home: string; json?: boolean }) => {
      const { resetLedger } = await import("@custos/node");
      const r = await resetLedger(o.home);
      output(
        !!o.json,
        r as unknown as Record<string, unknown>,
        `ledger moved to ${r.movedTo}
the node starts from genesis and syncs the chain from its peers (or from a peer's snapshot with --from-snapshot); a validator will not sign below what it signed before`,
      );
    });

  rpcOption(
    program.command("status").description("a node's chain id, height, latest hash, role, view, peers"),
  ).action(async (o: RpcOpts) => {
    const s = await client(o).status();
    output(
      !!o.json,
      s as unknown as Record<string, unknown>,
      `chain ${s.chainId} height ${s.height} ${s.latestHash}\nrole ${s.role}, view ${s.view}, peers ${s.peers}, pool ${s.pool.size} tx`,
    );
  });

  const block = program.command("block").description("blocks");
  rpcOption(
    block
      .command("get")
      .description("a block by height, hash or 'latest', with its commit certificate")
      .argument("<ref>", "HEIGHT | HASH | latest"),
  ).action(async (ref: string, o: RpcOpts) => {
    const r = /^[0-9]+$/.test(ref) ? Number(ref) : ref;
    const b = await client(o).getBlock(r);
    output(
      !!o.json,
      b,
      `block ${b.height} ${b.hash}\nprev ${b.prevHash}\nstate ${b.stateRoot}\ntxs ${b.txCount}, certified by ${(b.certificate as { signatures?: unknown[] } | null)?.signatures?.length ?? 0} validator(s)`,
    );
  });

  const tx = program.command("tx").description("transactions");
  rpcOption(
    tx.command("get").description("a transaction with its receipt and inclusion proofs").argument("<hash>"),
  ).action(async (hash: string, o: RpcOpts) => {
    const v = await client(o).getTx(hash);
    output(
      !!o.json,
      v as unknown as Record<string, unknown>,
      v.status === "pending"
        ? `${hash} pending`
        : `${hash} in block ${v.blockHeight}: ${v.receipt?.success ? "success" : `failed ${v.receipt?.errorCode}`}`,
    );
  });
  rpcOption(
    tx
      .command("wait")
      .description("wait until a transaction commits; non-zero exit when it failed")
      .argument("<hash>"),
  )
    .option("--timeout <seconds>", "how long to wait", "60")
    .action(async (hash: string, o: RpcOpts & { timeout: string }) => {
      const v = await client(o).waitForTx(hash, { timeoutMs: seconds(o.timeout) });
      output(
        !!o.json,
        v as unknown as Record<string, unknown>,
        `${hash} in block ${v.blockHeight}: ${v.receipt?.success ? "success" : `failed ${v.receipt?.errorCode}`}`,
      );
      if (!v.receipt?.success)
        throw new CustosError(
          v.receipt?.errorCode ?? "TX_FAILED",
          `transaction failed: ${v.receipt?.errorMessage}`,
        );
    });

  const ecny = program
    .command("ecny")
    .description("the digital-RMB (e-CNY) ledger; amounts in yuan, e.g. 12.34");
  signOption(ecny.command("issue").description("issue e-CNY on a recharge (operator)"))
    .requiredOption("--to <address>", "receiving account (or a demo member's name)")
    .requiredOption("--amount <yuan>", "amount in yuan")
    .requiredOption("--recharge-id <id>", "idempotency key of the recharge: a repeated id is refused")
    .action(async (o: SignOpts & { to: string; amount: string; rechargeId: string }) => {
      const amt = amount(o.amount);
      const t = target(o);
      const to = t.names.address(o.to, "--to");
      await checkNames(t);
      await requireAccount(t.client, to);
      await sendAndReport(
        o,
        t,
        { to: "ecny", method: "issue", args: [to, amt, o.rechargeId] },
        () => `issued ${formatFen(amt)} yuan to ${o.to === to ? to : `${o.to} (${to})`}`,
      );
    });
  signOption(ecny.command("transfer").description("transfer e-CNY from the key's account"))
    .requiredOption("--to <address>", "receiving account (or a demo member's name)")
    .requiredOption("--amount <yuan>", "amount in yuan")
    .action(async (o: SignOpts & { to: string; amount: string }) => {
      const amt = amount(o.amount);
      const t = target(o);
      const to = t.names.address(o.to, "--to");
      await checkNames(t);
      await requireAccount(t.client, to);
      await sendAndReport(
        o,
        t,
        { to: "ecny", method: "transfer", args: [to, amt] },
        () => `transferred ${formatFen(amt)} yuan to ${o.to === to ? to : `${o.to} (${to})`}`,
      );
    });
  signOption(ecny.command("freeze").description("freeze an account (regulator)").argument("<address>"))
    .requiredOption("--reason <text>", "why (recorded on chain)")
    .action(async (addr: string, o: SignOpts & { reason: string }) => {
      const t = target(o);
      const a = t.names.address(addr, "ADDRESS");
      await sendAndReport(o, t, { to: "ecny", method: "freeze", args: [a, o.reason] }, () => `froze ${a}`);
    });
  signOption(
    ecny.command("unfreeze").description("unfreeze an account (regulator)").argument("<address>"),
  ).action(async (addr: string, o: SignOpts) => {
    const t = target(o);
    const a = t.names.address(addr, "ADDRESS");
    await sendAndReport(o, t, { to: "ecny", method: "unfreeze", args: [a] }, () => `unfroze ${a}`);
  });
  rpcOption(
    ecny
      .command("balance")
      .description("an account's e-CNY balance")
      .argument("<address>", "an address or a demo member's name"),
  ).action(async (addr: string, o: RpcOpts) => {
    const t = target(o);
    const a = t.names.address(addr, "ADDRESS");
    await checkNames(t);
    const b = await t.client.ecnyBalance(a);
    output(
      !!o.json,
      b,
      `${b.address}: ${formatFen(BigInt(b.balance))} yuan${b.frozen ? ` (frozen: ${b.frozen})` : ""}`,
    );
  });
}
