/**
 * Loggers. Lambda handlers use Powertools Logger (structured JSON to stdout, the
 * Lambda log stream). The CLI keeps stdout for its own output (tables, `--json`)
 * and writes its log records to stderr instead: one readable line per record by default
 * (`warning: Drill step failed: ... (cluster aws/...)`), one JSON object per line with
 * `--log-format json` (or `FLEETWARD_LOG_FORMAT=json`) for machines.
 */
import type { Log } from '../ports.ts';
import { UsageError } from './errors.ts';
import { didYouMean } from './suggest.ts';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;

/** How the CLI writes log records: readable lines, or JSON lines. */
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The CLI's `--log-level` value: `warn` when absent, a `UsageError` naming the choices when unknown. */
export function parseLogLevel(value: string | undefined): LogLevel {
  if (value === undefined) return 'warn';
  if (!Object.hasOwn(LEVELS, value))
    throw new UsageError(
      `--log-level must be one of ${Object.keys(LEVELS).join(', ')}, got "${value}"${didYouMean(value, Object.keys(LEVELS))}`,
    );
  return value as LogLevel;
}

/**
 * The CLI's `--log-format` value, else `$FLEETWARD_LOG_FORMAT`, else `text`. Text is the default
 * on a terminal and off it alike (CI logs and `2> file` are read by people too, and output that
 * changes with the kind of stderr surprises); whoever feeds a log pipeline asks for `json`.
 */
export function parseLogFormat(
  value: string | undefined,
  fallback: string | undefined = process.env.FLEETWARD_LOG_FORMAT || undefined,
): LogFormat {
  const chosen = value ?? fallback ?? 'text';
  if (!(LOG_FORMATS as readonly string[]).includes(chosen)) {
    const from = value === undefined ? ' ($FLEETWARD_LOG_FORMAT)' : '';
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(', ')}, got "${chosen}"${from}`);
  }
  return chosen as LogFormat;
}

type Level = Exclude<LogLevel, 'silent'>;

/** The word a text line starts with, as compilers and package managers say it. */
const LABEL: Record<Level, string> = { debug: 'debug', info: 'info', warn: 'warning', error: 'error' };

/** Fields a person reading a terminal does not need: the record's envelope, and stack traces. */
const NOISE = new Set(['level', 'service', 'timestamp', 'stack', 'name', 'cause']);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

function show(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map(show).join(',');
  if (isPlainObject(value) && typeof value.message === 'string') return value.message;
  return JSON.stringify(value);
}

/**
 * Flattens nested objects into one list of fields (inner keys keep their own name unless
 * taken), collecting every `message` and `error` as the record's detail.
 */
function collect(
  fields: Record<string, unknown>,
  out: Map<string, unknown>,
  details: string[],
  prefix = '',
): void {
  for (const [key, value] of Object.entries(fields)) {
    if (NOISE.has(key) || value === undefined) continue;
    if (key === 'error' || key === 'message') {
      const text = show(value);
      if (text && !details.includes(text)) details.push(text);
      continue;
    }
    if (isPlainObject(value)) {
      collect(value, out, details, `${prefix}${key}.`);
      continue;
    }
    out.set(out.has(key) ? `${prefix}${key}` : key, value);
  }
}

/**
 * One log record as one readable line: `warning: Backup request failed: HTTP 500 (cluster
 * aws/111111111111/eu-central-1/ml-prod-0005, attempt 2)`. The cluster comes first; errors
 * and nested messages follow the message; no timestamp, service or stack.
 */
export function formatText(level: Level, message: string, fields: Record<string, unknown> = {}): string {
  const flat = new Map<string, unknown>();
  const details: string[] = [];
  collect(fields, flat, details);
  const order = [...flat.keys()].sort((a, b) => Number(b === 'cluster') - Number(a === 'cluster'));
  const parts = order.map((k) => `${k} ${show(flat.get(k))}`);
  const detail = details.length > 0 ? `: ${details.join('; ')}` : '';
  return `${LABEL[level]}: ${message}${detail}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`;
}

/** Where and how a CLI logger writes. */
export interface StderrLoggerOptions {
  format?: LogFormat;
  service?: string;
  /** Default: process.stderr. */
  stream?: Pick<NodeJS.WritableStream, 'write'>;
}

/** A logger that writes one line per record to stderr (text or JSON), at or above `level`. */
export function stderrLogger(level: LogLevel = 'warn', options: StderrLoggerOptions = {}): Log {
  const min = LEVELS[level];
  const format = options.format ?? 'json';
  const service = options.service ?? 'fleetward';
  const write =
    (lvl: Level) =>
    (message: string, ...extra: Record<string, unknown>[]) => {
      if (LEVELS[lvl] < min) return;
      const stream = options.stream ?? process.stderr;
      if (format === 'text') {
        // On a terminal, first clear the line a progress report may be drawing (it redraws itself).
        const clear = (stream as { isTTY?: boolean }).isTTY ? '\r\x1b[2K' : '';
        stream.write(`${clear}${formatText(lvl, message, Object.assign({}, ...extra))}\n`);
        return;
      }
      const record = Object.assign(
        { level: lvl.toUpperCase(), message, service, timestamp: new Date().toISOString() },
        ...extra,
      );
      stream.write(`${JSON.stringify(record)}\n`);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

/**
 * The logger of a CLI command from its `--log-level` and `--log-format` values (see
 * `LOG_OPTIONS` in bin/args.ts); a `UsageError` for a value it does not know.
 */
export function cliLogger(values: {
  'log-level'?: string | undefined;
  'log-format'?: string | undefined;
}): Log {
  return stderrLogger(parseLogLevel(values['log-level']), { format: parseLogFormat(values['log-format']) });
}

/** A logger that drops everything (tests that assert on results, not logs). */
export const silentLogger: Log = { debug() {}, info() {}, warn() {}, error() {} };
