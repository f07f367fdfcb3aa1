import { errorMessage, isCustosError } from "@custos/utils";
import { Command, CommanderError } from "commander";
import { registerChainCommands } from "./commands/chain.js";
import { registerContractCommands } from "./commands/contracts.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerGenesisCommand } from "./commands/genesis.js";
import { registerKeyCommands } from "./commands/keys.js";
import { registerTestnetCommands } from "./commands/testnet.js";

export function buildProgram(): Command {
  const program = new Command("custos")
    .description("Custos: a permissioned PBFT chain with SM2/SM3/SM4 for prepaid-fund supervision")
    .version("0.1.0")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    // Options of the root (--version, --help) only before a command: `template submit --version`
    // is the template's version.
    .enablePositionalOptions();
  registerKeyCommands(program);
  registerChainCommands(program);
  registerContractCommands(program);
  registerGenesisCommand(program);
  registerTestnetCommands(program);
  registerDoctor(program);
  return program;
}

/**
 * Runs the CLI and returns the exit status: 0 success, 1 failure (an error or, for `verify`,
 * an invalid signature), 2 a wrong command line. Errors are one line on stderr.
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message already; help and version are not failures
      return err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.exitCode === 0
        ? 0
        : 2;
    }
    const code = isCustosError(err) ? (err as { code: string }).code : "INTERNAL";
    process.stderr.write(`error: ${errorMessage(err)} (${code})\n`);
    return code === "USAGE" ? 2 : 1;
  }
}
