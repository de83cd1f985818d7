// The app boundary: a yargs instance whose options are derived from each command's config schema.
// Strict (unknown flags are errors, with a suggestion), one-line UserErrors instead of yargs' usage
// dump, `--config <file>` (JSON; flags override it), `--print-config` (prints the resolved config
// as JSON and returns without running the handler), and the terminal-output flags every app shares
// (`--log-format auto|pretty|json`, `--quiet`, `--log-file`), applied to the app's root logger before
// the handler runs. The instance never calls process.exit: apps run
// `await buildCli(...).parseAsync(hideBin(process.argv))` inside runMain.
//
// Schema defaults are shown in help through `defaultDescription` but are not given to yargs as
// `default`, so that a value in the config file is not overwritten by a default injected by yargs.
import { LOG_FORMATS, type LogFormat, type Logger, UserError } from '@latent-sft/core';
import yargs, { type Argv, type Options } from 'yargs';
import type { z } from 'zod';
import { loadConfig, type ConfigOf } from './load.js';
import { defineConfig, type ConfigDef } from './schema.js';
import { closest } from './suggest.js';

/** What a command handler gets besides its config. */
export interface CommandContext {
  /** The `--config` file, if one was given. */
  readonly configFile: string | undefined;
  /** The values of CliSpec.options (outside the config: how to run, not what), by flag name. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** One subcommand of an app, with its config schema and handler. */
export interface CliCommand<S extends z.ZodObject = z.ZodObject> {
  /** yargs command string, e.g. 'train' or '$0' for the default command. */
  command: string;
  describe: string;
  schema: ConfigDef<S>;
  handler(config: ConfigOf<S>, ctx: CommandContext): Promise<void> | void;
}

export interface CliSpec {
  /** The app name shown in help and usage. */
  name: string;
  /** Shown by --version (omit to have no --version flag). */
  version?: string;
  commands: readonly CliCommand[];
  /** Where --print-config writes (default process.stdout). */
  out?: (text: string) => void;
  /** The app's root logger: --log-format, --quiet and --log-file configure its output. */
  logger?: Logger;
  /** Extra flags of every command that are not config fields (e.g. the launcher's --gpus); see CommandContext.options. */
  options?: Readonly<Record<string, Options>>;
}

/** Keeps the types of one command's schema and handler together (for the commands array). */
export function defineCommand<S extends z.ZodObject>(cmd: CliCommand<S>): CliCommand {
  return cmd as unknown as CliCommand;
}

function formatDefault(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** The yargs option table of a config schema: one dotted flag per leaf field. */
export function yargsOptionsFromSchema(schema: ConfigDef | z.ZodObject): Record<string, Options> {
  const def = 'fields' in schema && 'schema' in schema ? (schema as ConfigDef) : defineConfig(schema as z.ZodObject);
  const table: Record<string, Options> = {};
  for (const f of def.fields) {
    const when = f.when ? ` [when ${f.when.discriminator} is ${f.when.values.join('|')}]` : '';
    table[f.path] = {
      type: f.type,
      describe: `${f.description}${when}`,
      ...(f.choices ? { choices: [...f.choices] } : {}),
      ...(f.hasDefault && f.defaultValue !== undefined ? { defaultDescription: formatDefault(f.defaultValue) } : {}),
      ...(f.type === 'boolean' ? {} : { requiresArg: true }),
    };
  }
  return table;
}

const BUILTIN_FLAGS = ['config', 'print-config', 'log-format', 'quiet', 'log-file', 'help', 'version'];

/** Turns a yargs validation message into a one-line UserError, adding "did you mean" for unknowns. */
function yargsError(msg: string, flags: readonly string[], commands: readonly string[]): UserError {
  const m = /^Unknown arguments?: (.+)$/.exec(msg.trim());
  if (m) {
    const tokens = (m[1] as string).split(', ');
    // A misspelled subcommand leaves every flag unknown too: name the word that is no flag.
    const word = commands.length > 0 ? tokens.find((t) => !flags.includes(t) && !/^-/.test(t) && tokens.some((u) => flags.includes(u))) : undefined;
    if (word !== undefined) {
      const cmd = closest(word, commands);
      return new UserError(`unknown command '${word}'${cmd !== undefined ? ` (did you mean '${cmd}'?)` : ` (commands: ${commands.join(', ')})`}`);
    }
    const token = tokens[0] as string;
    const flag = closest(token, flags);
    const cmd = closest(token, commands);
    const hint = flag !== undefined ? ` (did you mean '--${flag}'?)` : cmd !== undefined ? ` (did you mean '${cmd}'?)` : '';
    return new UserError(`unknown argument '${token}'${hint}`);
  }
  return new UserError(msg.replace(/\s*\n\s*/g, ' ').trim());
}

/** Builds the strict yargs CLI of an app; call `.parseAsync(argv)` on the result. */
export function buildCli(spec: CliSpec): Argv {
  const out =
    spec.out ??
    ((text: string) => {
      process.stdout.write(text);
    });
  const extra = spec.options ?? {};
  const allFlags = [...BUILTIN_FLAGS, ...Object.keys(extra), ...spec.commands.flatMap((c) => c.schema.fields.map((f) => f.path))];
  const commandNames = spec.commands.map((c) => c.command.split(' ')[0] as string).filter((c) => c !== '$0');
  let y: Argv = yargs()
    .scriptName(spec.name)
    .parserConfiguration({ 'dot-notation': false })
    .strict()
    .exitProcess(false)
    .fail((msg: string | null, err: Error | undefined) => {
      throw err ?? yargsError(msg ?? 'invalid command line', allFlags, commandNames);
    })
    .option('config', { type: 'string', requiresArg: true, describe: 'JSON config file; flags override its values' })
    .option('print-config', { type: 'boolean', describe: 'print the resolved config as JSON and exit' })
    .option('log-format', {
      type: 'string',
      choices: [...LOG_FORMATS],
      requiresArg: true,
      defaultDescription: 'auto',
      describe: 'log lines on stderr: pretty (short lines, progress bar), json (JSON lines), auto (pretty on a terminal)',
    })
    .option('quiet', { type: 'boolean', describe: 'log only warnings and errors, no progress bar' })
    .option('log-file', { type: 'string', requiresArg: true, describe: 'also append every log record to this file as JSON lines' })
    .options({ ...extra })
    .middleware((argv) => {
      const format = argv['log-format'] as LogFormat | undefined;
      const quiet = argv['quiet'] as boolean | undefined;
      const file = argv['log-file'] as string | undefined;
      spec.logger?.output?.configure({
        ...(format !== undefined ? { format } : {}),
        ...(quiet !== undefined ? { quiet } : {}),
        ...(file !== undefined ? { file } : {}),
      });
    })
    .help()
    .demandCommand(1, 'a command is required (see --help)')
    .wrap(null);
  y = spec.version !== undefined ? y.version(spec.version) : y.version(false);
  for (const cmd of spec.commands) {
    y = y.command(
      cmd.command,
      cmd.describe,
      (b) => b.options(yargsOptionsFromSchema(cmd.schema)),
      async (argv) => {
        const overrides: Record<string, unknown> = {};
        for (const f of cmd.schema.fields) if (argv[f.path] !== undefined) overrides[f.path] = argv[f.path];
        const configFile = argv['config'] as string | undefined;
        const config = loadConfig({ schema: cmd.schema, overrides, ...(configFile !== undefined ? { file: configFile } : {}) });
        if (argv['print-config'] === true) {
          out(`${JSON.stringify(config, null, 2)}\n`);
          return;
        }
        const options = Object.fromEntries(Object.keys(extra).map((k) => [k, argv[k]]));
        await cmd.handler(config, { configFile, options });
      },
    );
  }
  return y;
}
