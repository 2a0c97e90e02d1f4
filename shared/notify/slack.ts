/**
 * Delivery of Slack notifications through incoming webhooks: one FIFO queue per webhook,
 * at most one POST per `minIntervalMs` per webhook (webhooks run in parallel), 429
 * `Retry-After` honoured, 5xx and network errors retried with jittered exponential
 * backoff, other 4xx failed at once. Nothing is dropped silently: a message that cannot be
 * delivered rejects its `send` promise and is logged (with a short webhook id, never the URL).
 * A 429's wait is the longer of its `Retry-After` header and a `retry_after` (seconds) in a
 * JSON body (https://api.slack.com/docs/rate-limits; some webhook 429s carry only the body).
 *
 * Every message is redacted ({@link redact}) and fitted to Slack's limits
 * ({@link fitSlackLimits}) before it leaves the process.
 */
import { createHash } from 'node:crypto';
import { type Clock, type Log, systemClock } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';
import { parseRetryAfter, sleep as realSleep, withRetry } from '../runtime/retry.ts';

/**
 * A Slack message: the fallback `text` and optional Block Kit `blocks`. Slack accepts a
 * message with `blocks` and no `text` (notifications then show no preview), so `text` is optional.
 */
export interface SlackMessage {
  text?: string;
  blocks?: unknown[];
}

/**
 * Slack's documented limits, enforced before sending.
 * - `text`: Slack truncates messages longer than 40,000 characters; we truncate first, visibly.
 * - `blocks`: at most 50 blocks per message (more is rejected with `invalid_blocks`).
 * - a `section` block's `text`: at most 3,000 characters; each of its `fields`: at most 2,000.
 */
export const SLACK_LIMITS = {
  maxTextChars: 40_000,
  maxBlocks: 50,
  maxSectionTextChars: 3_000,
  maxSectionFieldChars: 2_000,
} as const;

/** Appended to anything shortened to fit a limit. */
export const TRUNCATION_MARK = '… (truncated)';

/** A message could not be delivered; `webhookId` is a short hash, never the URL. */
export class SlackDeliveryError extends FleetwardError {
  readonly webhookId: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  constructor(
    message: string,
    details: { webhookId: string; status?: number | undefined; retryable: boolean },
  ) {
    super(message);
    this.name = 'SlackDeliveryError';
    this.webhookId = details.webhookId;
    this.status = details.status;
    this.retryable = details.retryable;
  }
}

const REDACTIONS: [RegExp, string][] = [
  [/https?:\/\/[^\s]*\/services\/[^\s]*/gi, '[redacted webhook url]'],
  [/\bBearer\s+[A-Za-z0-9\-._~+/]+=*/gi, 'Bearer [redacted]'],
  [/k8s-aws-v1\.[A-Za-z0-9\-_=.]+/g, '[redacted token]'],
  [/\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b/g, '[redacted key id]'],
  [/\bxox[abposr]-[A-Za-z0-9-]+/g, '[redacted token]'],
];

/**
 * Removes secrets from text: webhook URLs (`…/services/…`), bearer tokens, EKS
 * `k8s-aws-v1.` tokens, AWS access key ids and Slack `xox?-` tokens.
 */
export function redact(text: string): string {
  let out = text;
  for (const [pattern, replacement] of REDACTIONS) out = out.replace(pattern, replacement);
  return out;
}

/** {@link redact} applied to every string inside a JSON-like value. */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactDeep(v);
    return out as T;
  }
  return value;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, max - TRUNCATION_MARK.length) + TRUNCATION_MARK;
}

function fitTextObject(obj: unknown, max: number): unknown {
  if (!obj || typeof obj !== 'object') return obj;
  const t = (obj as { text?: unknown }).text;
  return typeof t === 'string' && t.length > max ? { ...obj, text: truncate(t, max) } : obj;
}

function fitBlock(block: unknown): unknown {
  if (!block || typeof block !== 'object' || (block as { type?: unknown }).type !== 'section') return block;
  const section = { ...(block as Record<string, unknown>) };
  if (section.text !== undefined)
    section.text = fitTextObject(section.text, SLACK_LIMITS.maxSectionTextChars);
  if (Array.isArray(section.fields)) {
    section.fields = section.fields.map((f) => fitTextObject(f, SLACK_LIMITS.maxSectionFieldChars));
  }
  return section;
}

/**
 * Fits a message to {@link SLACK_LIMITS}: long `text` is truncated with "… (truncated)";
 * more than 50 blocks become the first 49 plus a context block "and N more"; long section
 * texts and fields are truncated.
 */
export function fitSlackLimits(message: SlackMessage): SlackMessage {
  const out: SlackMessage = {};
  if (typeof message.text === 'string') out.text = truncate(message.text, SLACK_LIMITS.maxTextChars);
  if (Array.isArray(message.blocks)) {
    let blocks = message.blocks.map(fitBlock);
    if (blocks.length > SLACK_LIMITS.maxBlocks) {
      const kept = SLACK_LIMITS.maxBlocks - 1;
      blocks = [
        ...blocks.slice(0, kept),
        { type: 'context', elements: [{ type: 'mrkdwn', text: `and ${blocks.length - kept} more` }] },
      ];
    }
    out.blocks = blocks;
  }
  return out;
}

/**
 * The `retry_after` (seconds) of a JSON 429 body such as `{"ok":false,"error":"rate_limited","retry_after":1}`,
 * in milliseconds; undefined for any other body.
 */
function bodyRetryAfterMs(body: string): number | undefined {
  if (!body.trimStart().startsWith('{')) return undefined;
  try {
    const value = (JSON.parse(body) as { retry_after?: unknown }).retry_after;
    const seconds = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
    return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0
      ? Math.round(seconds * 1000)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The short id logs and errors use for a webhook: the first 8 hex chars of sha256(url). */
export function webhookId(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 8);
}

export interface SlackDeliveryOptions {
  logger: Log;
  /** Default: the global fetch. */
  fetch?: typeof fetch;
  /** Default: the system clock. */
  clock?: Clock;
  /** Default: a real timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Jitter source for backoff, returns [0, 1). */
  random?: () => number;
  /** Minimum time between the end of one POST and the start of the next to one webhook (default 1000). */
  minIntervalMs?: number;
  /** Attempts per message for 5xx and network errors, including the first (default 6). 429s do not count. */
  maxAttempts?: number;
  /** How many 429 answers one message may get before it fails (default 20). */
  maxRateLimited?: number;
  /** Base of the exponential backoff (default 500 ms). */
  baseDelayMs?: number;
  /** Cap of one backoff or Retry-After wait (default 60 s). */
  maxDelayMs?: number;
  /** Per-request timeout (default 10 s). */
  timeoutMs?: number;
}

export interface SlackDelivery {
  /**
   * Queues a message for a webhook; resolves once Slack accepted it, rejects with a
   * {@link SlackDeliveryError} once it finally failed. Messages to one webhook go in order.
   */
  send(webhookUrl: string, message: SlackMessage): Promise<void>;
  /** Resolves once every queued message has been delivered or has failed. */
  drain(): Promise<void>;
}

interface Lane {
  id: string;
  tail: Promise<void>;
  nextAllowedAt: number;
}

/** Creates the delivery queue (see the module comment for its behaviour). */
export function createSlackDelivery(options: SlackDeliveryOptions): SlackDelivery {
  const doFetch = options.fetch ?? globalThis.fetch;
  const clock = options.clock ?? systemClock;
  const wait = options.sleep ?? ((ms: number) => realSleep(ms));
  const minIntervalMs = options.minIntervalMs ?? 1000;
  const maxAttempts = options.maxAttempts ?? 6;
  const maxRateLimited = options.maxRateLimited ?? 20;
  const maxDelayMs = options.maxDelayMs ?? 60_000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const log = options.logger;
  const lanes = new Map<string, Lane>();
  const now = () => clock.now().getTime();

  async function gate(lane: Lane): Promise<void> {
    // Loop: a timer may fire a little early; never POST before the slot.
    for (let left = lane.nextAllowedAt - now(); left > 0; left = lane.nextAllowedAt - now()) await wait(left);
  }

  /** One POST; 2xx resolves, 429 returns its wait, everything else throws a SlackDeliveryError. */
  async function post(lane: Lane, url: string, body: string): Promise<{ retryAfterMs?: number } | undefined> {
    await gate(lane);
    let response: Response;
    try {
      response = await doFetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      // The cause is not attached: foreign network errors can quote the URL.
      const kind = error instanceof Error ? error.name : 'Error';
      throw new SlackDeliveryError(`network error (${kind}) posting to slack webhook ${lane.id}`, {
        webhookId: lane.id,
        retryable: true,
      });
    } finally {
      lane.nextAllowedAt = now() + minIntervalMs;
    }
    const raw = await response.text().catch(() => '');
    if (response.ok) return undefined;
    if (response.status === 429) {
      // Header and body may both be present; waiting the longer one satisfies both.
      const hints = [
        parseRetryAfter(response.headers.get('retry-after'), now()),
        bodyRetryAfterMs(raw),
      ].filter((ms): ms is number => ms !== undefined);
      return { retryAfterMs: Math.min(maxDelayMs, hints.length > 0 ? Math.max(...hints) : minIntervalMs) };
    }
    const text = redact(raw.slice(0, 200)).trim();
    const retryable = response.status >= 500;
    throw new SlackDeliveryError(
      `slack webhook ${lane.id} answered ${response.status}${text ? ` ${text}` : ''}${retryable ? '' : ' (not retried)'}`,
      { webhookId: lane.id, status: response.status, retryable },
    );
  }

  async function deliver(lane: Lane, url: string, message: SlackMessage): Promise<void> {
    const body = JSON.stringify(fitSlackLimits(redactDeep(message)));
    let rateLimited = 0;
    await withRetry(
      async () => {
        for (;;) {
          const limited = await post(lane, url, body);
          if (!limited) return;
          rateLimited++;
          if (rateLimited > maxRateLimited) {
            throw new SlackDeliveryError(`slack webhook ${lane.id} rate limited ${rateLimited} times`, {
              webhookId: lane.id,
              status: 429,
              retryable: false,
            });
          }
          const retryAfterMs = limited.retryAfterMs ?? minIntervalMs;
          log.warn('slack webhook rate limited', { webhook: lane.id, retryAfterMs });
          lane.nextAllowedAt = Math.max(lane.nextAllowedAt, now() + retryAfterMs);
        }
      },
      (error) => ({ retry: error instanceof SlackDeliveryError && error.retryable }),
      {
        maxAttempts,
        baseDelayMs: options.baseDelayMs ?? 500,
        maxDelayMs,
        sleep: (ms) => wait(ms),
        ...(options.random ? { random: options.random } : {}),
        onRetry: ({ attempt, delayMs, error }) =>
          log.warn('slack delivery retrying', {
            webhook: lane.id,
            attempt,
            delayMs,
            error: error instanceof Error ? error.message : String(error),
          }),
      },
    );
  }

  return {
    send(webhookUrl, message) {
      let lane = lanes.get(webhookUrl);
      if (!lane) {
        lane = { id: webhookId(webhookUrl), tail: Promise.resolve(), nextAllowedAt: 0 };
        lanes.set(webhookUrl, lane);
      }
      const current = lane;
      const run = current.tail.then(() => deliver(current, webhookUrl, message));
      const done = run.then(
        () => log.debug('slack message delivered', { webhook: current.id }),
        (error: unknown) => {
          const info =
            error instanceof SlackDeliveryError
              ? { name: error.name, message: error.message, status: error.status }
              : { name: 'Error', message: redact(String(error)) };
          log.error('slack message not delivered', { webhook: current.id, error: info });
          throw error;
        },
      );
      current.tail = done.catch(() => undefined);
      return done;
    },
    async drain() {
      for (;;) {
        const tails = [...lanes.values()].map((l) => l.tail);
        await Promise.all(tails);
        if ([...lanes.values()].every((l, i) => l.tail === tails[i]) && tails.length === lanes.size) return;
      }
    },
  };
}
