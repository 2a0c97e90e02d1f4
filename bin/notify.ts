/**
 * `fleetward notify test`: one test message per Slack route, through the delivery the jobs use,
 * with Slack's answer per route. Also `notifyAfter`, the `--notify` of the job commands: after
 * the command's work, the digest the scheduled function would send.
 */
import { configPath, loadConfig } from '../shared/config/load.ts';
import type { FleetConfig } from '../shared/config/schema.ts';
import { safeText } from '../shared/notify/digest.ts';
import {
  type DiscoveryNews,
  type JobReport,
  type NotifyResult,
  notifyAfterDiscovery,
  notifyAfterJob,
  notifyAfterReport,
} from '../shared/notify/notifier.ts';
import { createSlackDelivery, redact, type SlackMessage } from '../shared/notify/slack.ts';
import { createWebhookResolver } from '../shared/notify/webhooks.ts';
import type { Clock, Log, StateStore } from '../shared/ports.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { didYouMean } from '../shared/runtime/suggest.ts';
import { LOG_OPTIONS, parseCommandArgs, subcommand } from './args.ts';
import { EXIT, summaryLine } from './output.ts';

export const NOTIFY_HELP = `Usage: fleetward notify test [--route NAME] [--config FILE] [--json] [--log-level LEVEL]

Sends one test message to every Slack route of the config (or to the one named), through
the delivery the jobs use: one message per second per webhook, a 429's wait honoured, 5xx
and network errors retried with backoff. Prints per route the webhook's name (never its
URL), Slack's answer (200 ok, 404 no_service, 429 rate_limited, network error) with the
retries it took, and the time taken; then a summary line.
A route is named <jurisdiction>/<webhook> ('all' when it takes every jurisdiction);
--route takes that name or a webhook name (every route to that webhook).

Job commands send their Slack digest when given --notify, as the scheduled functions do
after every run: discover, backup, drill, tags, budgets, audit, snapshot.

Options:
  --route NAME   only this route
  --json         print {"routes": [...], "summary": {"delivered", "failed"}}
Exit: 0 every route delivered, 1 some route failed, 2 bad usage, config, or no Slack routes.`;

type Route = NonNullable<FleetConfig['slack']>['routes'][number];

/** Each route's name, `<jurisdiction>/<webhook>` (`all/<webhook>` without one); a repeated name gets `#<n>`. */
export function routeNames(routes: readonly Route[]): string[] {
  const seen = new Map<string, number>();
  return routes.map((r) => {
    const name = `${r.jurisdiction ?? 'all'}/${r.webhook}`;
    const n = (seen.get(name) ?? 0) + 1;
    seen.set(name, n);
    return n === 1 ? name : `${name}#${n}`;
  });
}

/** One POST to a webhook as `notify test` saw it: `200 ok`, `429 rate_limited`, `network error (ECONNREFUSED)`. */
interface Attempt {
  status?: number;
  answer: string;
}

/** What one route answered. */
export interface RouteTest {
  route: string;
  webhook: string;
  jurisdiction: string | null;
  minSeverity: string;
  delivered: boolean;
  /** HTTP status of the last answer; absent for a network error or an unreadable webhook. */
  status?: number;
  /** Slack's answer and the retries it took, e.g. `200 ok after 1 retry (429)`. */
  answer: string;
  attempts: Attempt[];
  ms: number;
}

/** Slack's short answer from a response body: `ok`, `no_service`, or the `error` of a JSON body. */
function answerWord(body: string): string {
  const text = body.trim();
  if (text.startsWith('{')) {
    try {
      const error = (JSON.parse(text) as { error?: unknown }).error;
      return typeof error === 'string' ? safeText(error).slice(0, 60) : '';
    } catch {
      return '';
    }
  }
  return safeText(text.split(/\s/)[0] ?? '').slice(0, 60);
}

/** Why a fetch failed, without its message (which can quote the URL): `ECONNREFUSED`, `TimeoutError`. */
function networkCause(error: unknown): string {
  const code = (error as { cause?: { code?: unknown } }).cause?.code;
  return typeof code === 'string' ? code : error instanceof Error ? error.name : 'Error';
}

function answerOf(attempts: Attempt[], delivered: boolean, fallback: string): string {
  const last = attempts.at(-1);
  if (!last) return fallback;
  const earlier = attempts.slice(0, -1).map((a) => a.status ?? 'network error');
  // One attempt that failed is a 4xx Slack will not accept again (5xx, 429 and network errors are retried).
  if (earlier.length === 0) return delivered ? last.answer : `${last.answer} (not retried)`;
  const retries = `${earlier.length} ${earlier.length === 1 ? 'retry' : 'retries'}`;
  return delivered
    ? `${last.answer} after ${retries} (${earlier.join(', ')})`
    : `${last.answer}, gave up after ${attempts.length} attempts`;
}

function testMessage(name: string, route: Route, stage: string, at: Date): SlackMessage {
  const scope = route.jurisdiction ? `jurisdiction *${safeText(route.jurisdiction)}*` : 'every jurisdiction';
  return {
    text: `Fleetward test message [${safeText(stage)}]: route ${safeText(name)} reaches this channel.`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: 'Fleetward test message', emoji: true } },
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text:
            `Route \`${safeText(name)}\` reaches this channel: findings of ${scope} at severity ` +
            `*${route.minSeverity}* or above are sent here after each job.`,
        },
      },
      {
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `stage *${safeText(stage)}* · sent by \`fleetward notify test\` at ${at.toISOString()}`,
          },
        ],
      },
    ],
  };
}

/**
 * Sends one test message to each of `selected` (indexes into `slack.routes`) and reports what
 * each answered. Routes to one webhook go one after the other, webhooks in parallel.
 */
export async function sendTestMessages(
  config: FleetConfig,
  selected: number[],
  logger: Log,
): Promise<RouteTest[]> {
  const slack = config.slack;
  if (!slack) return [];
  const names = routeNames(slack.routes);
  const resolver = createWebhookResolver(slack.webhooks, { logger });
  // The attempts of the route being sent, per URL: the fetch below records each POST there.
  const current = new Map<string, Attempt[]>();
  const recordingFetch: typeof fetch = async (input, init) => {
    const attempts = current.get(String(input));
    try {
      const response = await fetch(input, init);
      const word = answerWord(await response.clone().text());
      attempts?.push({ status: response.status, answer: `${response.status}${word ? ` ${word}` : ''}` });
      return response;
    } catch (error) {
      attempts?.push({ answer: `network error (${networkCause(error)})` });
      throw error;
    }
  };
  const delivery = createSlackDelivery({ logger, fetch: recordingFetch });
  const at = new Date();

  const results: RouteTest[] = selected.map((i) => {
    const route = slack.routes[i]!;
    return {
      route: names[i]!,
      webhook: route.webhook,
      jurisdiction: route.jurisdiction ?? null,
      minSeverity: route.minSeverity,
      delivered: false,
      answer: '',
      attempts: [],
      ms: 0,
    };
  });
  const byUrl = new Map<string, number[]>();
  await Promise.all(
    selected.map(async (i, k) => {
      const result = results[k]!;
      try {
        const url = await resolver.resolve(slack.routes[i]!.webhook);
        byUrl.set(url, [...(byUrl.get(url) ?? []), k]);
      } catch (error) {
        const ref = slack.webhooks[slack.routes[i]!.webhook];
        const hint = ref?.from === 'env' ? `; set ${ref.name}` : '';
        result.answer = `webhook not readable: ${redact((error as Error).message)}${hint}`;
      }
    }),
  );
  await Promise.all(
    [...byUrl].map(async ([url, ks]) => {
      for (const k of ks) {
        const result = results[k]!;
        const i = selected[k]!;
        current.set(url, result.attempts);
        const started = performance.now();
        try {
          await delivery.send(url, testMessage(result.route, slack.routes[i]!, config.stage, at));
          result.delivered = true;
        } catch (error) {
          result.answer = redact((error as Error).message);
        }
        result.ms = Math.round(performance.now() - started);
        const last = result.attempts.at(-1);
        if (last?.status !== undefined) result.status = last.status;
        result.answer = answerOf(result.attempts, result.delivered, result.answer);
      }
    }),
  );
  await delivery.drain();
  return results;
}

function renderTests(results: RouteTest[]): string {
  const rows = [
    ['ROUTE', 'WEBHOOK', 'ANSWER', 'TIME'],
    ...results.map((r) => [r.route, r.webhook, r.answer, `${(r.ms / 1000).toFixed(2)} s`]),
  ];
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, c) => (c < 3 ? cell.padEnd(widths[c]!) : cell))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The routes `--route NAME` selects (a route name or a webhook name); a `UsageError` with near names otherwise. */
function selectRoutes(routes: readonly Route[], wanted: string | undefined): number[] {
  const names = routeNames(routes);
  const all = routes.map((_, i) => i);
  if (wanted === undefined) return all;
  const byName = names.indexOf(wanted);
  if (byName >= 0) return [byName];
  const byWebhook = all.filter((i) => routes[i]!.webhook === wanted);
  if (byWebhook.length > 0) return byWebhook;
  const webhooks = routes.map((r) => r.webhook);
  throw new UsageError(
    `unknown route "${wanted}"${didYouMean(wanted, [...names, ...webhooks])} (routes: ${names.join(', ')})`,
  );
}

/** `fleetward notify test ...`; returns the exit code. */
export async function cmdNotify(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('notify', {
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      route: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...LOG_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(NOTIFY_HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  subcommand('notify', sub, ['test']);
  const logger = cliLogger(values);
  const file = configPath(values.config);
  const config = await loadConfig(file);
  const routes = config.slack?.routes ?? [];
  if (routes.length === 0)
    throw new UsageError(`${file} has no slack routes (add slack.webhooks and slack.routes)`);
  const selected = selectRoutes(routes, values.route);

  const results = await sendTestMessages(config, selected, logger);
  const delivered = results.filter((r) => r.delivered).length;
  const code = delivered === results.length ? EXIT.ok : EXIT.failed;
  const summary = { delivered, failed: results.length - delivered };
  if (values.json) console.log(JSON.stringify({ routes: results, summary }, null, 2));
  else console.log(`${renderTests(results)}\n${summaryLine(summary, code)}`);
  return code;
}

/** What `--notify` sends: a job's new findings, a discovery's news, or a report the job built. */
export type NotifyWhat =
  | { job: string; runId?: string | undefined; jurisdiction?: string | undefined }
  | { discovery: DiscoveryNews }
  | { report: JobReport };

/** What a notification needs of a job's wiring. */
export interface NotifyDeps {
  config: FleetConfig;
  store: StateStore;
  logger: Log;
  clock?: Clock;
}

/**
 * `--notify` of a job command: when `enabled`, sends the digest the scheduled function sends
 * after the same work (only findings new since the last notice; the snapshot's report as is),
 * and says on stderr how many routes were notified or which failed. Never throws: the
 * command's result stands. Resolves `false` when the notification failed: every command
 * folds that into its exit code (1) before printing its summary line.
 */
export async function notifyAfter(
  enabled: boolean | undefined,
  deps: NotifyDeps,
  what: NotifyWhat,
): Promise<boolean> {
  if (!enabled) return true;
  const say = (line: string) => process.stderr.write(`Slack: ${line}\n`);
  const routes = deps.config.slack?.routes ?? [];
  if (routes.length === 0) {
    say('not notified: the config has no slack routes (slack.webhooks and slack.routes)');
    return false;
  }
  const result: NotifyResult | undefined =
    'discovery' in what
      ? await notifyAfterDiscovery(deps, what.discovery)
      : 'report' in what
        ? await notifyAfterReport(deps, what.report)
        : await notifyAfterJob(deps, what.job, { runId: what.runId, jurisdiction: what.jurisdiction });
  if (!result) {
    say('notification failed (the error is logged above); nothing was recorded as notified');
    return false;
  }
  const names = routeNames(routes);
  const outcomes = result.routes ?? [];
  const sent = outcomes.filter((o) => o.status === 'sent').map((o) => names[o.route]);
  for (const o of outcomes.filter((x) => x.status === 'failed')) {
    say(`route ${names[o.route]} (webhook ${o.webhook}) failed: ${o.error?.message ?? 'unknown error'}`);
  }
  if (sent.length > 0) say(`notified ${sent.length} route(s) (${sent.join(', ')})`);
  else if (outcomes.every((o) => o.status === 'nothing'))
    say('notified 0 route(s): nothing new for any route since the last notice');
  else say('notified 0 route(s)');
  return (result.failed ?? 0) === 0;
}
