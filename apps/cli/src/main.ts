/**
 * The podnet command line. Exit codes: 0 success; 1 the answer is "no" (a trace not delivered, a
 * scenario probe that failed); 2 bad input (scenario, flag, name, file). Every command takes --json;
 * with it, an input error is also printed on stdout as `{"error": {code, message, ...}}`.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError, type Option } from "commander";
import { benchCommand } from "./commands/bench.js";
import { compareCommand } from "./commands/compare.js";
import { infoCommands } from "./commands/info.js";
import { labCommands } from "./commands/lab.js";
import { policyCommands } from "./commands/policy.js";
import { runCommand } from "./commands/run.js";
import { traceCommand } from "./commands/trace.js";
import { webCommand } from "./commands/web.js";
import { reportOf, UsageError } from "./errors.js";
import { errorColor } from "./format.js";

export { UsageError };

/** The version of the installed package, read from its package.json (dist/ sits beside it). */
function version(): string {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return manifest.version;
}

export function program(): Command {
  const cli = new Command("podnet")
    .description("Design, compare and run Kubernetes pod networks")
    .version(version())
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(errorColor.red(text)) })
    .showSuggestionAfterError();
  infoCommands(cli);
  runCommand(cli);
  traceCommand(cli);
  compareCommand(cli);
  benchCommand(cli);
  webCommand(cli);
  labCommands(cli);
  policyCommands(cli);
  return cli;
}

/** A reader that went away (`podnet run … | head -1`) ends the output, not the process with a trace. */
function quietOnClosedPipe(): void {
  for (const stream of [process.stdout, process.stderr])
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE") process.exit(Number(process.exitCode ?? 0));
      if (!standardOutputFailed(error)) throw error;
      process.exit(2);
    });
}

/**
 * A write to standard output or error that failed (a full disk, `>/dev/full`, an I/O error): said in
 * one line on standard error, when it can be, instead of a stack trace. False for anything else.
 */
function standardOutputFailed(error: unknown): boolean {
  const e = error as NodeJS.ErrnoException;
  if (!(error instanceof Error) || e.syscall !== "write" || e.path !== undefined || !e.code) return false;
  try {
    process.stderr.write(`error: cannot write standard output (${e.code})\n`);
  } catch {
    // standard error is gone too: the exit status says it
  }
  return true;
}

/**
 * The options of a command line as the command it names reads them — `--to --json` is a target named
 * "--json", not the option — walked without parsing, since an error may come before commander has
 * parsed anything: each option with its value (undefined for a flag), up to `--`. Stops when `visit`
 * returns something, and returns that.
 */
function eachOption<T>(
  cli: Command,
  argv: readonly string[],
  visit: (flag: string, option: Option | undefined, value: string | undefined) => T | undefined,
): T | undefined {
  let command = cli;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") return undefined;
    if (!token.startsWith("-")) {
      command = command.commands.find((c) => c.name() === token || c.aliases().includes(token)) ?? command;
      continue;
    }
    const [flag, inline] = token.split(/=(.*)/s);
    const option = [command, cli].flatMap((c) => c.options).find((o) => o.long === flag || o.short === flag);
    // commander's reading: a required value is the next word whatever it is, an optional one unless
    // it starts with "-".
    const value =
      option && (option.required || option.optional)
        ? (inline ?? (option.required || !argv[i + 1]?.startsWith("-") ? argv[++i] : undefined))
        : undefined;
    const seen = visit(flag!, option, value);
    if (seen !== undefined) return seen;
  }
  return undefined;
}

/** Whether the command line asks for --json, as an option of the command it names. */
const asksForJson = (cli: Command, argv: readonly string[]) =>
  eachOption(cli, argv, (flag) => (flag === "--json" ? true : undefined)) ?? false;

/**
 * An option that takes one value, given twice (`--provider overlay --provider cbr0-host-gw`):
 * commander keeps the last and says nothing, so a user who meant to compare two would read one.
 */
function repeatedOption(cli: Command, argv: readonly string[]): string | undefined {
  const values = new Map<string, string[]>();
  return eachOption(cli, argv, (_flag, option, value) => {
    if (!option || !(option.required || option.optional) || option.variadic) return undefined;
    const name = option.long ?? option.short!;
    const seen = [...(values.get(name) ?? []), value ?? ""];
    values.set(name, seen);
    if (seen.length < 2) return undefined;
    const plural = name === "--provider" ? " (--providers a,b compares several)" : "";
    return `${name}: given more than once (${seen.map((v) => JSON.stringify(v)).join(", then ")}); it takes one value${plural}`;
  });
}

export async function main(argv: string[]): Promise<number> {
  quietOnClosedPipe();
  const cli = program();
  const json = asksForJson(cli, argv);
  try {
    const repeated = repeatedOption(cli, argv);
    if (repeated) throw new UsageError(repeated);
    await cli.parseAsync(argv, { from: "user" });
    return Number(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0;
      // commander has printed the message already.
      if (json) printError({ code: "EUSAGE", message: error.message.replace(/^error: /, "") });
      return 2;
    }
    if (standardOutputFailed(error)) return 2;
    const report = reportOf(error);
    if (!report) throw error;
    process.stderr.write(`${errorColor.red("error")}: ${report.message}\n`);
    if (json) printError(report);
    return 2;
  }
}

/** An error object on stdout for --json, shaped and spaced like every other --json output. */
function printError(error: { code: string; message: string }): void {
  process.stdout.write(JSON.stringify({ error }, null, 2) + "\n");
}
