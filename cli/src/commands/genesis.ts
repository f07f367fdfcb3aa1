import { readFile, writeFile } from "node:fs/promises";
import { sm3 } from "@custos/crypto";
import { encodeGenesis, genesisToJson, P2P_SECURE, parseGenesis } from "@custos/types";
import { CustosError, toHex } from "@custos/utils";
import type { Command } from "commander";
import { output, UsageError } from "../io.js";

const collect = (v: string, prev: string[]) => [...prev, v];

function parseValidator(v: string) {
  // name,publicKey,peerId,multiaddr[,multiaddr...]
  const [name, publicKey, peerId, ...p2p] = v.split(",");
  if (!name || !publicKey || !peerId || p2p.length === 0) {
    throw new UsageError(`--validator takes name,publicKey,peerId,multiaddr (got ${JSON.stringify(v)})`);
  }
  return { name, publicKey, peerId, p2p };
}

function parseObserver(v: string) {
  // name,publicKey,peerId[,multiaddr...]: an observer may have no address others dial
  const [name, publicKey, peerId, ...p2p] = v.split(",");
  if (!name || !publicKey || !peerId) {
    throw new UsageError(`--observer takes name,publicKey,peerId[,multiaddr] (got ${JSON.stringify(v)})`);
  }
  return { name, publicKey, peerId, p2p };
}

function parseMember(v: string) {
  // name,publicKey,role[+role...][,tier]
  const [name, publicKey, roles, tier] = v.split(",");
  if (!name || !publicKey || !roles)
    throw new UsageError(`--member takes name,publicKey,role[+role][,tier] (got ${JSON.stringify(v)})`);
  return { name, publicKey, roles: roles.split("+"), ...(tier ? { ecnyTier: Number(tier) } : {}) };
}

export function registerGenesisCommand(program: Command): void {
  program
    .command("genesis")
    .description(
      "build a genesis from the members' public keys, peer ids and addresses (no private key leaves its owner)",
    )
    .requiredOption("--out <file>", "genesis file to write (never overwritten)")
    .option(
      "--from <file>",
      "a JSON spec: {chainId, validators:[{name, publicKey, peerId, p2p}], observers:[...], members:[{name, publicKey, roles, ecnyTier}], ...}",
    )
    .option("--chain-id <id>", "chain id")
    .option("--validator <spec>", "name,publicKey,peerId,multiaddr (repeat per validator)", collect, [])
    .option(
      "--observer <spec>",
      "name,publicKey,peerId[,multiaddr] of a read-only observer node (repeat per observer)",
      collect,
      [],
    )
    .option("--member <spec>", "name,publicKey,role[+role][,tier] (repeat per member)", collect, [])
    .option("--block-interval <ms>", "minimum block interval (default: a dev chain's)")
    .option("--max-block-txs <n>", "transactions per block at most (default: a dev chain's)")
    .option("--block-limit-window <n>", "blockLimit window (default: a dev chain's)")
    .option(
      "--large-tx-threshold <fen>",
      "e-CNY amount that raises LargeTransaction (default: a dev chain's)",
    )
    .option(
      "--p2p-secure <kind>",
      'how nodes secure their connections: "sm" (national algorithms: SM2, SM3, SM4) or "noise"',
    )
    .option("--json", "print one JSON document")
    .action(async (o: Record<string, string | string[] | boolean | undefined>) => {
      let spec: Record<string, unknown> = {};
      if (typeof o.from === "string") {
        try {
          spec = JSON.parse(await readFile(o.from, "utf8"));
        } catch (cause) {
          throw new CustosError("FILE_NOT_READABLE", `cannot read ${o.from} as JSON`, {}, { cause });
        }
      }
      if (o.p2pSecure !== undefined && !P2P_SECURE.includes(o.p2pSecure as "sm"))
        throw new UsageError(
          `--p2p-secure takes ${P2P_SECURE.join(" or ")} (got ${JSON.stringify(o.p2pSecure)})`,
        );
      const validators = (o.validator as string[]).map(parseValidator);
      const members = (o.member as string[]).map(parseMember);
      const observers = (o.observer as string[]).map(parseObserver);
      const int = (v: unknown) => Number(v);
      const { DEV_CHAIN, DEV_TIERS } = await import("@custos/node");
      const genesis = parseGenesis({
        chainId: o.chainId ?? spec.chainId,
        timestamp: spec.timestamp ?? Date.now(),
        blockLimitWindow: spec.blockLimitWindow ?? int(o.blockLimitWindow ?? DEV_CHAIN.blockLimitWindow),
        consensus: {
          validators: validators.length
            ? validators
            : (spec.validators ?? (spec.consensus as { validators?: unknown })?.validators),
          minBlockIntervalMs:
            (spec.consensus as { minBlockIntervalMs?: number })?.minBlockIntervalMs ??
            int(o.blockInterval ?? DEV_CHAIN.minBlockIntervalMs),
          maxBlockTxs:
            (spec.consensus as { maxBlockTxs?: number })?.maxBlockTxs ??
            int(o.maxBlockTxs ?? DEV_CHAIN.maxBlockTxs),
        },
        observers: observers.length ? observers : spec.observers,
        members: members.length ? members : spec.members,
        ecny: spec.ecny ?? {
          tiers: DEV_TIERS,
          largeTxThreshold: o.largeTxThreshold ?? DEV_CHAIN.largeTxThreshold,
        },
        // national algorithms on the wire unless the spec or the command line says otherwise
        p2p: o.p2pSecure === undefined ? (spec.p2p ?? { secure: "sm" }) : { secure: o.p2pSecure },
      });
      const json = genesisToJson(genesis);
      try {
        await writeFile(o.out as string, `${JSON.stringify(json, null, 2)}\n`, { flag: "wx" });
      } catch (cause) {
        throw new CustosError(
          "FILE_NOT_WRITABLE",
          `cannot create ${o.out} (it may exist already)`,
          {},
          { cause },
        );
      }
      const hash = `0x${toHex(sm3(encodeGenesis(genesis)))}`;
      output(
        !!o.json,
        {
          file: o.out,
          chainId: genesis.chainId,
          genesisHash: hash,
          validators: genesis.consensus.validators.length,
          observers: genesis.observers.length,
          members: genesis.members.length,
          p2pSecure: genesis.p2p.secure,
        },
        `genesis ${o.out}: chain ${genesis.chainId}, ${genesis.consensus.validators.length} validators, ${genesis.members.length} members, connections secured with ${genesis.p2p.secure === "sm" ? "national algorithms (sm)" : "noise"}\ngenesis hash ${hash} (every member should see the same)`,
      );
    });
}
