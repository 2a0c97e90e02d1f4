/**
 * The one way every CLI command reports an error, and the exit code it means: a bad command
 * line or config exits 2 with what to fix; anything else exits 1 with the error's message and
 * its causes. The stack trace is for debugging only: `--log-level debug` or `FLEETWARD_DEBUG=1`.
 */
import { isAbsolute } from 'node:path';
import { isMissingConfig } from '../shared/config/load.ts';
import { UnknownClusterError } from '../shared/jobs/fleet.ts';
import { ConfigError, FleetwardError, UsageError } from '../shared/runtime/errors.ts';
import { EXIT } from './output.ts';

/** Where an error happened: the command (for its help) and its arguments (for `--log-level debug`). */
export interface ErrorContext {
  /** The command that failed (`backup`), when it is one fleetward knows. */
  command?: string | undefined;
  /** The command's arguments. */
  args?: readonly string[] | undefined;
  /** The environment (FLEETWARD_DEBUG); default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Where the report goes; default stderr. */
  write?: (text: string) => void;
}

/** Whether the user asked for debugging output: `--log-level debug` (either spelling) or `FLEETWARD_DEBUG=1`. */
export function debugRequested(args: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FLEETWARD_DEBUG === '1' || env.FLEETWARD_DEBUG === 'true') return true;
  return args.some((a, i) => a === '--log-level=debug' || (a === '--log-level' && args[i + 1] === 'debug'));
}

/** `./fleet.yaml` for a bare relative name, the path as given otherwise. */
function shown(file: string): string {
  return isAbsolute(file) || file.startsWith('.') ? file : `./${file}`;
}

/** The messages of `error`'s causes, outermost first, leaving out any its parent already says. */
function causes(error: Error): string[] {
  const out: string[] = [];
  let parent: Error = error;
  let cause = error.cause;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    const message = cause instanceof Error ? cause.message : String(cause);
    if (message && !parent.message.includes(message)) out.push(message);
    if (!(cause instanceof Error)) break;
    parent = cause;
    cause = cause.cause;
  }
  return out;
}

function isUsage(error: unknown): boolean {
  return (
    error instanceof UsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS') === true
  );
}

/**
 * Prints `error` the way every command does and returns the exit code:
 * - a missing config file: where it was looked for and how to make one (2);
 * - an invalid config: `invalid config FILE:` and one `  path: reason` line per issue, or
 *   `FILE:LINE:COLUMN: reason` for a YAML syntax error (2);
 * - bad usage: the message and `Run 'fleetward <command> --help' for usage.` (2);
 * - an unknown `--cluster`: the message and the ids it could mean (2);
 * - anything else: `fleetward: <message>`, a `  cause:` line per cause, and the stack trace
 *   when debugging was asked for (1).
 */
export function reportError(error: unknown, context: ErrorContext = {}): number {
  const write = context.write ?? ((text: string) => process.stderr.write(text));
  const say = (...lines: string[]) => write(`${lines.join('\n')}\n`);
  const help = context.command ? `fleetward ${context.command} --help` : 'fleetward --help';
  if (isMissingConfig(error)) {
    const file = error.file ?? 'fleet.yaml';
    say(
      `fleetward: no config file at ${shown(file)}; copy fleet.example.yaml to ${file} and edit it, or run 'npm run sandbox' for a local fleet`,
    );
    return EXIT.usage;
  }
  if (error instanceof ConfigError) {
    const file = error.file;
    // YAML syntax errors are placed in the file already (`fleet.yaml:12:5`): one line each, as compilers print them.
    if (file && error.issues.every((i) => i.path.startsWith(`${file}:`)))
      say(...error.issues.map((i) => `fleetward: ${i.path}: ${i.message}`));
    else
      say(
        `fleetward: invalid config${file ? ` ${file}` : ''}:`,
        ...error.issues.map((i) => `  ${i.path}: ${i.message}`),
      );
    return EXIT.usage;
  }
  if (error instanceof UnknownClusterError) {
    const hint = error.candidates.length > 0 ? [`  did you mean: ${error.candidates.join(', ')}`] : [];
    say(`fleetward: ${error.message}`, ...hint);
    return EXIT.usage;
  }
  if (isUsage(error)) {
    say(`fleetward: ${(error as Error).message}`, `Run '${help}' for usage.`);
    return EXIT.usage;
  }
  const debug = debugRequested(context.args, context.env);
  if (!(error instanceof Error)) {
    say(`fleetward: ${String(error)}`);
    return EXIT.failed;
  }
  const lines = [`fleetward: ${error.message || error.name}`, ...causes(error).map((c) => `  cause: ${c}`)];
  if (debug && error.stack) lines.push(error.stack);
  // Not one of ours: most likely a bug, whose stack trace is what a report needs.
  else if (!(error instanceof FleetwardError))
    lines.push(`Run again with FLEETWARD_DEBUG=1 (or --log-level debug) for the stack trace.`);
  say(...lines);
  return EXIT.failed;
}

/** Runs a command and reports its error, if any, the one way; returns the exit code. */
export async function runReported(
  command: string,
  run: (args: string[]) => Promise<number>,
  args: string[],
): Promise<number> {
  try {
    return await run(args);
  } catch (error) {
    return reportError(error, { command, args });
  }
}
