/**
 * Loggers. Lambda handlers use Powertools Logger (structured JSON to stdout, the
 * Lambda log stream). The CLI keeps stdout for its own output (tables, `--json`)
 * and writes structured log lines to stderr instead.
 */
import type { Log } from '../ports.ts';
import { UsageError } from './errors.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/** The CLI's `--log-level` value: `warn` when absent, a `UsageError` naming the choices when unknown. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'warn';
  if (!Object.hasOwn(LEVELS, value))
    throw new UsageError(`--log-level must be one of ${Object.keys(LEVELS).join(', ')}`);
  return value as LogLevel;
}

/** A structured logger that writes one JSON line per record to stderr, at or above `level`. */
export function stderrLogger(level: LogLevel = 'warn', service = 'fleetward'): Log {
  const min = LEVELS[level];
  const write =
    (lvl: Exclude<LogLevel, 'silent'>) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (LEVELS[lvl] < min) return;
      const record = Object.assign(
        { level: lvl.toUpperCase(), message, service, timestamp: new Date().toISOString() },
        ...extra,
      );
      process.stderr.write(`${JSON.stringify(record)}\n`);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/** A logger that drops everything (tests that assert on results, not logs). */
export const silentLogger: Log = { debug() {}, info() {}, warn() {}, error() {} };
