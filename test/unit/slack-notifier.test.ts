import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  createSlackDelivery,
  fitSlackLimits,
  redact,
  SlackDeliveryError,
  type SlackDeliveryOptions,
  webhookId,
} from '../../shared/notify/slack.ts';
import type { Log } from '../../shared/ports.ts';

/** Virtual time: sleeps are timers that `run` fires in order, advancing `now`. */
function virtualTime() {
  let now = 0;
  const timers: { at: number; resolve: () => void }[] = [];
  const flush = () => new Promise<void>((r) => setImmediate(r));
  return {
    now: () => now,
    clock: { now: () => new Date(now) },
    sleep: (ms: number) =>
      new Promise<void>((resolve) => timers.push({ at: now + Math.max(0, ms), resolve })),
    async run<T>(work: Promise<T>): Promise<T> {
      let settled = false;
      const watched = work.finally(() => {
        settled = true;
      });
      watched.catch(() => undefined);
      for (let i = 0; i < 10_000; i++) {
        await flush();
        if (settled) return watched;
        timers.sort((a, b) => a.at - b.at);
        const next = timers.shift();
        if (!next) throw new Error('stuck: nothing scheduled');
        now = next.at;
        next.resolve();
      }
      throw new Error('too many timers');
    },
  };
}

type Reply = { status: number; body?: string; retryAfter?: string };

/** A fake fetch: records posts (url, parsed body, virtual time) and answers from a per-URL script (default 200 ok). */
function fakeFetch(now: () => number, script: Record<string, Reply[]> = {}) {
  const posts: { url: string; at: number; body: { text: string; blocks?: unknown[] }; raw: string }[] = [];
  const fetch: typeof globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    const raw = String(init?.body);
    posts.push({ url, at: now(), body: JSON.parse(raw), raw });
    const reply = script[url]?.shift() ?? { status: 200, body: 'ok' };
    const headers: Record<string, string> = reply.retryAfter ? { 'retry-after': reply.retryAfter } : {};
    return new Response(reply.body ?? '', { status: reply.status, headers });
  }) as typeof globalThis.fetch;
  return { fetch, posts };
}

function memoryLog() {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: Record<string, unknown>[]) =>
      lines.push(`${level} ${message} ${JSON.stringify(extra)}`);
  const logger: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  return { logger, lines };
}

const A = 'http://127.0.0.1:9/services/test/sandbox/a';
const B = 'http://127.0.0.1:9/services/test/sandbox/b';

function setup(script: Record<string, Reply[]> = {}, extra: Partial<SlackDeliveryOptions> = {}) {
  const vt = virtualTime();
  const f = fakeFetch(vt.now, script);
  const log = memoryLog();
  const delivery = createSlackDelivery({
    logger: log.logger,
    fetch: f.fetch,
    clock: vt.clock,
    sleep: vt.sleep,
    random: () => 0.5,
    ...extra,
  });
  return { vt, ...f, ...log, delivery };
}

describe('createSlackDelivery', () => {
  it('keeps order per webhook, one POST per second per webhook, webhooks in parallel', async () => {
    const { vt, posts, delivery } = setup();
    const sends = [1, 2, 3].flatMap((n) => [
      delivery.send(A, { text: `a${n}` }),
      delivery.send(B, { text: `b${n}` }),
    ]);
    await vt.run(Promise.all([...sends, delivery.drain()]));
    const of = (url: string) => posts.filter((p) => p.url === url);
    expect(of(A).map((p) => p.body.text)).toEqual(['a1', 'a2', 'a3']);
    expect(of(B).map((p) => p.body.text)).toEqual(['b1', 'b2', 'b3']);
    expect(of(A).map((p) => p.at)).toEqual([0, 1000, 2000]);
    expect(of(B).map((p) => p.at)).toEqual([0, 1000, 2000]);
    expect(vt.now()).toBe(2000);
  });

  it('honours 429 Retry-After and retries the same message, keeping order and losing nothing', async () => {
    const { vt, posts, delivery, lines } = setup({
      [A]: [
        { status: 200, body: 'ok' },
        { status: 429, body: 'rate_limited', retryAfter: '5' },
      ],
    });
    const sends = ['m1', 'm2', 'm3'].map((text) => delivery.send(A, { text }));
    await vt.run(Promise.all(sends));
    expect(posts.map((p) => [p.body.text, p.at])).toEqual([
      ['m1', 0],
      ['m2', 1000],
      ['m2', 6000],
      ['m3', 7000],
    ]);
    expect(lines.some((l) => l.startsWith('warn slack webhook rate limited'))).toBe(true);
  });

  it('honours retry_after in a 429 JSON body that comes without a Retry-After header', async () => {
    // The body a rate-limited incoming webhook returned (test/fixtures/slack/README.md): retry_after 1 s.
    const body = readFileSync(
      new URL('../fixtures/slack/webhook-429-rate-limited.json', import.meta.url),
      'utf8',
    );
    const { vt, posts, delivery, lines } = setup({ [A]: [{ status: 429, body }] }, { minIntervalMs: 100 });
    await vt.run(delivery.send(A, { text: 'x' }));
    expect(posts.map((p) => p.at)).toEqual([0, 1000]);
    expect(lines.find((l) => l.startsWith('warn slack webhook rate limited'))).toContain(
      '"retryAfterMs":1000',
    );
  });

  it('waits the longer of the Retry-After header and the body retry_after', async () => {
    const { vt, posts, delivery } = setup(
      {
        [A]: [
          {
            status: 429,
            body: JSON.stringify({ ok: false, error: 'rate_limited', retry_after: 3 }),
            retryAfter: '1',
          },
          {
            status: 429,
            body: JSON.stringify({ ok: false, error: 'rate_limited', retry_after: 1 }),
            retryAfter: '2',
          },
        ],
      },
      { minIntervalMs: 100 },
    );
    await vt.run(delivery.send(A, { text: 'x' }));
    expect(posts.map((p) => p.at)).toEqual([0, 3000, 5000]);
  });

  it('ignores a body retry_after that is not a non-negative number', async () => {
    const { vt, posts, delivery } = setup(
      {
        [A]: [
          { status: 429, body: JSON.stringify({ ok: false, retry_after: 'soon' }) },
          { status: 429, body: JSON.stringify({ ok: false, retry_after: -5 }) },
          { status: 429, body: 'rate_limited' },
        ],
      },
      { minIntervalMs: 100 },
    );
    await vt.run(delivery.send(A, { text: 'x' }));
    expect(posts.map((p) => p.at)).toEqual([0, 100, 200, 300]);
  });

  it('fits and delivers a message with blocks and no top-level text', async () => {
    const { vt, posts, delivery } = setup();
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text: 'z'.repeat(4000) } }];
    await vt.run(delivery.send(A, { blocks }));
    const sent = posts[0]?.body;
    expect(sent && 'text' in sent).toBe(false);
    const text = (sent?.blocks?.[0] as { text: { text: string } } | undefined)?.text.text ?? '';
    expect(text).toHaveLength(3000);
  });

  it('429 does not use up the 5xx attempts', async () => {
    const script = {
      [A]: [
        { status: 429, retryAfter: '1' },
        { status: 429, retryAfter: '1' },
        { status: 429, retryAfter: '1' },
        { status: 200 },
      ],
    };
    const { vt, posts, delivery } = setup(script, { maxAttempts: 1 });
    await vt.run(delivery.send(A, { text: 'x' }));
    expect(posts).toHaveLength(4);
  });

  it('retries 5xx and network errors with backoff, then delivers', async () => {
    const vt = virtualTime();
    let calls = 0;
    const times: number[] = [];
    const fetch = (async () => {
      calls++;
      times.push(vt.now());
      if (calls === 1) return new Response('internal_error', { status: 500 });
      if (calls === 2) throw new TypeError(`fetch failed for ${A}`);
      return new Response('ok', { status: 200 });
    }) as typeof globalThis.fetch;
    const { logger, lines } = memoryLog();
    const delivery = createSlackDelivery({
      logger,
      fetch,
      clock: vt.clock,
      sleep: vt.sleep,
      random: () => 0.5,
    });
    await vt.run(delivery.send(A, { text: 'x' }));
    expect(calls).toBe(3);
    expect(times[1]).toBeGreaterThanOrEqual(1000);
    expect(lines.filter((l) => l.startsWith('warn slack delivery retrying'))).toHaveLength(2);
    expect(lines.join('\n')).not.toContain('/services/');
  });

  it('gives up after maxAttempts on 5xx, rejects that send and still delivers the next', async () => {
    const fails = Array.from({ length: 3 }, () => ({ status: 503, body: 'service_unavailable' }));
    const { vt, posts, delivery, lines } = setup({ [A]: fails }, { maxAttempts: 3 });
    const first = delivery.send(A, { text: 'lost?' });
    const second = delivery.send(A, { text: 'next' });
    const error = await vt.run(
      first.then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    await vt.run(second);
    expect(error).toBeInstanceOf(SlackDeliveryError);
    expect((error as SlackDeliveryError).status).toBe(503);
    expect(posts.map((p) => p.body.text)).toEqual(['lost?', 'lost?', 'lost?', 'next']);
    const failure = lines.find((l) => l.startsWith('error slack message not delivered'));
    expect(failure).toContain(webhookId(A));
    expect(failure).not.toContain(A);
  });

  it('fails a 400 at once, without retry, with a clear error', async () => {
    const { vt, posts, delivery } = setup({ [A]: [{ status: 400, body: 'invalid_payload' }] });
    const error = await vt.run(
      delivery.send(A, { text: 'x' }).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    expect(posts).toHaveLength(1);
    expect(error).toBeInstanceOf(SlackDeliveryError);
    expect((error as Error).message).toBe(
      `slack webhook ${webhookId(A)} answered 400 invalid_payload (not retried)`,
    );
    expect((error as SlackDeliveryError).retryable).toBe(false);
  });

  it('fits long text, 60 blocks and long sections to Slack limits before sending', async () => {
    const { vt, posts, delivery } = setup();
    const blocks = Array.from({ length: 60 }, (_, i) => ({
      type: 'section',
      text: { type: 'mrkdwn', text: i === 0 ? 'y'.repeat(5000) : `block ${i}` },
    }));
    await vt.run(delivery.send(A, { text: 'x'.repeat(50_000), blocks }));
    const sent = posts[0]?.body;
    expect(sent?.text).toHaveLength(40_000);
    expect(sent?.text.endsWith('… (truncated)')).toBe(true);
    expect(sent?.blocks).toHaveLength(50);
    expect(sent?.blocks?.[49]).toEqual({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: 'and 11 more' }],
    });
    expect(sent?.blocks?.[48]).toEqual(blocks[48]);
    const firstText = (sent?.blocks?.[0] as { text: { text: string } } | undefined)?.text.text ?? '';
    expect(firstText).toHaveLength(3000);
    expect(firstText.endsWith('… (truncated)')).toBe(true);
  });

  it('never sends or logs webhook URLs or tokens', async () => {
    const secrets = [
      'http://127.0.0.1:9/services/test/sandbox/other',
      'Bearer abc.DEF-ghi_123',
      'k8s-aws-v1.aHR0cHM6Ly9leGFtcGxlLmludmFsaWQ',
      // A key-id-shaped placeholder, assembled so no key-like literal sits in the source.
      `${'AKIA'}${'TESTPLACEHOLDER0'}`,
    ];
    const { vt, posts, delivery, lines } = setup({
      [A]: [{ status: 400, body: `invalid_payload ${secrets[0]}` }],
    });
    const text = `failed: ${secrets.join(' and ')}`;
    const blocks = [{ type: 'section', text: { type: 'mrkdwn', text } }];
    await vt.run(delivery.send(A, { text, blocks }).catch(() => undefined));
    await vt.run(delivery.send(A, { text, blocks }));
    const everything = [...posts.map((p) => p.raw), ...lines].join('\n');
    for (const secret of [...secrets, 'abc.DEF', A]) expect(everything).not.toContain(secret);
    expect(posts[1]?.body.text).toBe(
      'failed: [redacted webhook url] and Bearer [redacted] and [redacted token] and [redacted key id]',
    );
  });
});

describe('helpers', () => {
  it('redact leaves ordinary text alone', () => {
    expect(redact('cluster prod-eu in eu-west-1: 3 findings')).toBe(
      'cluster prod-eu in eu-west-1: 3 findings',
    );
  });
  it('fitSlackLimits keeps a blocks-only message without text', () => {
    const message = { blocks: [{ type: 'divider' }] };
    expect(fitSlackLimits(message)).toEqual(message);
  });
  it('fitSlackLimits keeps a small message unchanged', () => {
    const message = { text: 'hi', blocks: [{ type: 'divider' }] };
    expect(fitSlackLimits(message)).toEqual(message);
  });
  it('webhookId is 8 hex chars', () => {
    expect(webhookId(A)).toMatch(/^[0-9a-f]{8}$/);
  });
});
