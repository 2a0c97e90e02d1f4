/**
 * Argument parsing for every CLI command: `node:util` parseArgs, with its errors reworded
 * into one plain sentence that names the command and, for a mistyped flag, the flag meant;
 * and the subcommand check, which names the subcommand meant the same way.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from '../shared/runtime/errors.ts';
import { didYouMean } from '../shared/runtime/suggest.ts';

/** The flag a parseArgs error message quotes (`Unknown option '--foo'...`), if any. */
function quotedFlag(message: string): string | undefined {
  return /'(-{1,2}[^' ]+)/.exec(message)?.[1];
}

/** The flags a parse config accepts, long and short, as typed on a command line. */
function flagsOf(config: ParseArgsConfig): string[] {
  return Object.entries(config.options ?? {}).flatMap(([name, o]) => [
    `--${name}`,
    ...(o.short ? [`-${o.short}`] : []),
  ]);
}

/**
 * `parseArgs(config)` for `fleetward <command>`; a bad flag becomes a `UsageError` such as
 * `unknown option "--dry-rn" for "fleetward backup"; did you mean "--dry-run"?`.
 */
export function parseCommandArgs<T extends ParseArgsConfig>(command: string, config: T) {
  try {
    return parseArgs(config);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (!code?.startsWith('ERR_PARSE_ARGS')) throw error;
    const message = (error as Error).message;
    const flag = quotedFlag(message);
    const where = `for "fleetward ${command}"`;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) {
      // A one-letter flag is too short to guess from.
      const hint = flag.length > 2 ? didYouMean(flag, flagsOf(config)) : '';
      throw new UsageError(`unknown option "${flag}" ${where}${hint}`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
      const option = config.options?.[flag.replace(/^-+/, '')];
      throw new UsageError(
        option?.type === 'boolean'
          ? `option "${flag}" ${where} takes no value`
          : `option "${flag}" ${where} needs a value (${flag} VALUE)`,
      );
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const arg = /'([^']*)'/.exec(message)?.[1];
      throw new UsageError(`unexpected argument${arg ? ` "${arg}"` : ''} ${where}`);
    }
    throw new UsageError(`${message} (${where})`, { cause: error });
  }
}

/** `run or status`, `one of: aws, gcp, azure`. */
function choiceList(choices: readonly string[]): string {
  return choices.length === 2 ? `${choices[0]} or ${choices[1]}` : `one of: ${choices.join(', ')}`;
}

/**
 * The error for a subcommand that is none of `choices`, naming the valid ones and the near
 * match: `unknown backup command "rn" (expected run or status); did you mean "run"?`.
 * `command` is '' for fleetward's own commands (`unknown command "discove"; did you mean
 * "discover"?`: the top-level help lists them); `noun` replaces `command` (e.g. `target`).
 */
export function unknownChoice(
  command: string,
  value: string,
  choices: readonly string[],
  noun = 'command',
): UsageError {
  const what = command
    ? `${command} ${noun} "${value}" (expected ${choiceList(choices)})`
    : `${noun} "${value}"`;
  return new UsageError(`unknown ${what}${didYouMean(value, choices)}`);
}

/** `value` when it is one of `choices`; otherwise throws {@link unknownChoice}'s error. */
export function subcommand<const C extends string>(
  command: string,
  value: string,
  choices: readonly C[],
  noun = 'command',
): C {
  if ((choices as readonly string[]).includes(value)) return value as C;
  throw unknownChoice(command, value, choices, noun);
}
/**
 * How a command logs (stderr): `--log-level debug|info|warn|error|silent` (default warn) and
 * `--log-format text|json` (default text, or `$FLEETWARD_LOG_FORMAT`). Every command that runs a
 * job spreads these into its options and builds its logger with `cliLogger(values)`.
 */
export const LOG_OPTIONS = {
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
} as const;

/** `--wide`: tables show their optional columns and may run wider than 120 columns. */
export const WIDE_OPTION = { wide: { type: 'boolean', default: false } } as const;
