/**
 * A local Slack incoming-webhook sink: an HTTP server on 127.0.0.1 that records the
 * messages posted to `/services/test/sandbox/<name>` and answers like Slack's incoming
 * webhooks (https://api.slack.com/messaging/webhooks#handling_errors):
 * - 200 `ok` (text/html) for an accepted message
 * - 400 `invalid_payload` for a body that is not a JSON object with a non-empty `text`
 *   string or a non-empty `blocks` array; 400 `invalid_blocks` for more than 50 blocks
 * - 404 `no_service` for a path that names no webhook (only names from `url(name)` exist)
 * - 429 `rate_limited` with `Retry-After` (seconds) when a webhook gets more than
 *   `rateLimit.perWindow` messages in `rateLimit.windowMs` (default 1 per 1000 ms; `false` turns it off)
 * - a scripted 429 can instead carry the wait only in a JSON body,
 *   `{"retry_after":1,"ok":false,"error":"rate_limited"}`, as a recorded webhook 429 does
 *   (test/fixtures/slack/README.md)
 *
 * Faults: `failNext(name, …, times)`, or a shared `FaultInjector` (cloud `slack`, operation
 * `incoming-webhook`, scope = webhook name). Requests are recorded in `log` when given.
 *
 * Not Slack, for people trying routes: `GET /messages` answers every accepted message as
 * JSON (`[{ "webhook", "at", "text", "blocks" }]`, oldest first), and `onMessage` tells a
 * listener about each one as it arrives (`npm run sandbox` prints them).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Fault, FaultInjector, holdResponse, type RequestLog } from './faults.ts';

export interface SlackSinkMessage {
  /** Milliseconds since the epoch when it was accepted. */
  at: number;
  body: { text?: string; blocks?: unknown[]; [key: string]: unknown };
}

export type SlackSinkFailure =
  | { status: 429; retryAfterSeconds?: number; retryAfterIn?: 'header' | 'body' }
  | { status: 500 | 502 | 503 | 504 };

export interface SlackSinkOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /** Slack's per-webhook rate limit (default 1 message per 1000 ms). */
  rateLimit?: { perWindow: number; windowMs: number } | false;
}

export interface SlackSink {
  /** The webhook URL for `name` (creates the webhook). */
  url(name: string): string;
  /** Accepted messages, for one webhook or all, in arrival order. */
  messages(name?: string): SlackSinkMessage[];
  /** The next `times` (default 1) requests to `name` get this answer instead. */
  failNext(name: string, failure: SlackSinkFailure, times?: number): void;
  /** Where `GET` lists every accepted message as JSON. */
  readonly messagesUrl: string;
  /** Calls `listener` with each message accepted from now on; returns the unsubscribe function. */
  onMessage(listener: (webhook: string, message: SlackSinkMessage) => void): () => void;
  stop(): Promise<void>;
}

const PREFIX = '/services/test/sandbox/';
const MESSAGES_PATH = '/messages';
const OPERATION = 'incoming-webhook';

export async function startSlackSink(options: SlackSinkOptions = {}): Promise<SlackSink> {
  const faults = options.faults ?? new FaultInjector();
  const rateLimit = options.rateLimit === undefined ? { perWindow: 1, windowMs: 1000 } : options.rateLimit;
  const hooks = new Map<string, { accepted: SlackSinkMessage[]; failures: SlackSinkFailure[] }>();
  const all: (SlackSinkMessage & { name: string })[] = [];
  const held = new Set<ServerResponse>();
  const listeners = new Set<(webhook: string, message: SlackSinkMessage) => void>();

  function answer(
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(status, {
      'content-type': 'text/html',
      'content-length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  function readBody(req: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (req.method === 'GET' && path === MESSAGES_PATH) {
      const list = all.map((m) => ({ webhook: m.name, at: new Date(m.at).toISOString(), ...m.body }));
      return answer(res, 200, `${JSON.stringify(list, null, 2)}\n`, { 'content-type': 'application/json' });
    }
    const name = path.startsWith(PREFIX) ? decodeURIComponent(path.slice(PREFIX.length)) : undefined;
    const raw = await readBody(req);
    const record = (status: number, fault?: Fault['kind']) =>
      options.log?.record({
        cloud: 'slack',
        operation: OPERATION,
        ...(name ? { scope: name } : {}),
        at: started,
        durationMs: Date.now() - started,
        status,
        ...(fault ? { fault } : {}),
      });
    const hook = name === undefined ? undefined : hooks.get(name);
    if (!hook || req.method !== 'POST') {
      record(404);
      return answer(res, 404, 'no_service');
    }
    const scripted = hook.failures.shift();
    if (scripted?.status === 429 && scripted.retryAfterIn === 'body') {
      await faults.delay();
      record(429, 'throttle');
      const wait = scripted.retryAfterSeconds ?? 1;
      return answer(res, 429, JSON.stringify({ retry_after: wait, ok: false, error: 'rate_limited' }), {
        'content-type': 'application/json; charset=utf-8',
      });
    }
    const fault: Fault | undefined = scripted
      ? scripted.status === 429
        ? {
            kind: 'throttle',
            ...(scripted.retryAfterSeconds === undefined
              ? {}
              : { retryAfterSeconds: scripted.retryAfterSeconds }),
          }
        : { kind: 'error', status: scripted.status }
      : faults.take({ cloud: 'slack', operation: OPERATION, ...(name ? { scope: name } : {}) });
    if (fault) {
      await faults.delay();
      switch (fault.kind) {
        case 'throttle':
          record(429, fault.kind);
          return answer(res, 429, 'rate_limited', { 'retry-after': String(fault.retryAfterSeconds ?? 1) });
        case 'error':
          record(fault.status, fault.kind);
          return answer(res, fault.status, fault.status >= 500 ? 'internal_error' : 'error');
        case 'timeout':
          record(0, fault.kind);
          return holdResponse(res, held);
        case 'malformed':
          record(200, fault.kind);
          return answer(res, 200, 'o');
        case 'deny':
          record(403, fault.kind);
          return answer(res, 403, 'invalid_token');
      }
    }
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const msg = body as SlackSinkMessage['body'] | undefined;
    const hasText = typeof msg?.text === 'string' && msg.text.length > 0;
    const hasBlocks = Array.isArray(msg?.blocks) && msg.blocks.length > 0;
    if (!msg || typeof msg !== 'object' || Array.isArray(msg) || !(hasText || hasBlocks)) {
      record(400);
      return answer(res, 400, 'invalid_payload');
    }
    if (Array.isArray(msg.blocks) && msg.blocks.length > 50) {
      record(400);
      return answer(res, 400, 'invalid_blocks');
    }
    const at = Date.now();
    if (rateLimit) {
      const recent = hook.accepted.filter((m) => at - m.at < rateLimit.windowMs);
      if (recent.length >= rateLimit.perWindow) {
        const oldest = recent[0]?.at ?? at;
        const retryAfter = Math.max(1, Math.ceil((oldest + rateLimit.windowMs - at) / 1000));
        record(429);
        return answer(res, 429, 'rate_limited', { 'retry-after': String(retryAfter) });
      }
    }
    const entry = { at, body: msg };
    hook.accepted.push(entry);
    all.push({ ...entry, name: name as string });
    record(200);
    answer(res, 200, 'ok');
    for (const listener of listeners) listener(name as string, entry);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) answer(res, 500, 'internal_error');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address !== 'object') throw new Error('slack sink did not bind');
  const base = `http://127.0.0.1:${address.port}`;

  const url = (name: string): string => {
    if (!hooks.has(name)) hooks.set(name, { accepted: [], failures: [] });
    return `${base}${PREFIX}${encodeURIComponent(name)}`;
  };

  return {
    url,
    messages(name) {
      if (name === undefined) return all.map(({ at, body }) => ({ at, body }));
      return [...(hooks.get(name)?.accepted ?? [])];
    },
    failNext(name, failure, times = 1) {
      url(name);
      const hook = hooks.get(name);
      for (let i = 0; i < times; i++) hook?.failures.push(failure);
    },
    messagesUrl: `${base}${MESSAGES_PATH}`,
    onMessage(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    stop() {
      return new Promise<void>((resolve) => {
        for (const res of held) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
