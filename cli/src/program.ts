import { errorMessage, isCustosError } from "@custos/utils";
import { Command, CommanderError } from "commander";
import { registerAuditCommands } from "./commands/audit.js";
import { registerBackupCommands } from "./commands/backup.js";
import { registerChainCommands } from "./commands/chain.js";
import { registerComplaintCommands } from "./commands/complaint.js";
import { registerContractCommands } from "./commands/contracts.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerGenesisCommand } from "./commands/genesis.js";
import { registerKeyCommands } from "./commands/keys.js";
import { registerPrepaidCommands } from "./commands/prepaid.js";
import { registerSnapshotCommands } from "./commands/snapshot.js";
import { registerTestnetCommands } from "./commands/testnet.js";
import { printError, USAGE } from "./io.js";

export function buildProgram(): Command {
  const program = new Command("custos")
    .description("Custos: a permissioned PBFT chain with SM2/SM3/SM4 for prepaid-fund supervision")
    .version("0.1.0")
    // commander's own errors (unknown command or option, missing argument) are reported by main
    // as one line with the USAGE code, like every other error
    .configureOutput({ outputError: () => {} })
    .exitOverride()
    // Options of the root (--version, --help) only before a command: `template submit --version`
    // is the template's version.
    .enablePositionalOptions();
  registerKeyCommands(program);
  registerChainCommands(program);
  registerContractCommands(program);
  registerAuditCommands(program);
  registerComplaintCommands(program);
  registerPrepaidCommands(program);
  registerGenesisCommand(program);
  registerTestnetCommands(program);
  registerBackupCommands(program);
  registerSnapshotCommands(program);
  registerDoctor(program);
  return program;
}

/** `--json` among the options (not after `--`): errors are then a JSON document too. */
function wantsJson(argv: string[]): boolean {
  const args = argv.slice(2);
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).includes("--json");
}

/** The words of argv that name a command, e.g. "ecny transfer", for "see custos ... --help". */
function commandPath(program: Command, argv: string[]): string {
  const path: string[] = [];
  let cmd = program;
  for (const word of argv.slice(2)) {
    const next = cmd.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) break;
    path.push(word);
    cmd = next;
  }
  return ["custos", ...path].join(" ");
}

/**
 * Runs the CLI and returns the exit status: 0 success, 1 failure (an error or, for `verify`,
 * an invalid signature), 2 a wrong command line (code USAGE). An error is one line on stderr:
 * `error: MESSAGE (CODE)`, or with --json the document {"error": {"code", "message"}}.
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = wantsJson(argv);
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version are not failures; help shown for a command without its subcommand is
      // (commander has printed it)
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0)
        return 0;
      if (err.code === "commander.help") return 2;
      const message = err.message
        .replace(/^error: /, "")
        .split("\n")
        .map((l) => l.trim().replace(/^\((.*)\)$/, "$1"))
        .filter(Boolean)
        .join("; ");
      printError(json, USAGE, `${message}; see ${commandPath(program, argv)} --help`);
      return 2;
    }
    const code = isCustosError(err) ? (err as { code: string }).code : "INTERNAL";
    printError(json, code, errorMessage(err));
    return code === USAGE ? 2 : 1;
  }
}
