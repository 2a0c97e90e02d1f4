/**
 * The Slack sink answers what Slack's incoming webhooks answer
 * (https://api.slack.com/messaging/webhooks#handling_errors): 200 `ok`, 400
 * `invalid_payload`, 404 `no_service`, 429 `rate_limited` with `Retry-After` — and the real
 * `createSlackDelivery` delivers to it within the 1-per-second limit without a 429.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlackDelivery } from '../../shared/notify/slack.ts';
import type { Log } from '../../shared/ports.ts';
import { RequestLog } from '../sandbox/faults.ts';
import { type SlackSink, startSlackSink } from '../sandbox/slack-sink.ts';

let sink: SlackSink;
const requests = new RequestLog();

beforeAll(async () => {
  sink = await startSlackSink({ log: requests });
});

afterAll(async () => {
  await sink?.stop();
});

async function post(url: string, body: string) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after') };
}

describe('slack sink', () => {
  it('answers 200 ok and records the message', async () => {
    const url = sink.url('ok');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/services\/test\/sandbox\/ok$/);
    expect(await post(url, JSON.stringify({ text: 'hello' }))).toEqual({
      status: 200,
      body: 'ok',
      retryAfter: null,
    });
    expect(sink.messages('ok').map((m) => m.body)).toEqual([{ text: 'hello' }]);
  });

  it('answers 400 invalid_payload for bad JSON or no text/blocks', async () => {
    const url = sink.url('bad');
    for (const body of [
      '{not json',
      '{}',
      JSON.stringify({ text: '' }),
      JSON.stringify({ blocks: [] }),
      '[]',
    ]) {
      expect(await post(url, body)).toMatchObject({ status: 400, body: 'invalid_payload' });
    }
    expect(sink.messages('bad')).toEqual([]);
  });

  it('answers 404 no_service for an unknown webhook', async () => {
    const unknown = sink.url('ok').replace(/ok$/, 'never-created');
    expect(await post(unknown, JSON.stringify({ text: 'x' }))).toMatchObject({
      status: 404,
      body: 'no_service',
    });
  });

  it('answers 429 rate_limited with Retry-After for more than 1 message per second', async () => {
    const url = sink.url('burst');
    expect((await post(url, JSON.stringify({ text: '1' }))).status).toBe(200);
    expect(await post(url, JSON.stringify({ text: '2' }))).toEqual({
      status: 429,
      body: 'rate_limited',
      retryAfter: '1',
    });
    expect(sink.messages('burst')).toHaveLength(1);
  });

  it('answers scripted failures: 429 with Retry-After, then 500', async () => {
    const url = sink.url('scripted');
    sink.failNext('scripted', { status: 429, retryAfterSeconds: 7 });
    sink.failNext('scripted', { status: 500 });
    expect(await post(url, JSON.stringify({ text: 'x' }))).toEqual({
      status: 429,
      body: 'rate_limited',
      retryAfter: '7',
    });
    expect((await post(url, JSON.stringify({ text: 'x' }))).status).toBe(500);
    expect(requests.count('slack', 'incoming-webhook')).toBeGreaterThan(0);
  });

  it('answers a scripted 429 with retry_after only in the JSON body, like the recorded sample', async () => {
    const sample = JSON.parse(
      readFileSync(new URL('../fixtures/slack/webhook-429-rate-limited.json', import.meta.url), 'utf8'),
    );
    const url = sink.url('body-429');
    sink.failNext('body-429', { status: 429, retryAfterSeconds: 1, retryAfterIn: 'body' });
    const got = await post(url, JSON.stringify({ text: 'x' }));
    expect(got).toMatchObject({ status: 429, retryAfter: null });
    expect(JSON.parse(got.body)).toEqual(sample);
  });

  it('the real delivery waits out a body-only retry_after and then delivers', async () => {
    const delivery = createSlackDelivery({
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: () => undefined,
      },
      minIntervalMs: 50,
    });
    const url = sink.url('body-429-real');
    sink.failNext('body-429-real', { status: 429, retryAfterSeconds: 1, retryAfterIn: 'body' });
    const started = Date.now();
    await delivery.send(url, {
      blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'blocks only' } }],
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(sink.messages('body-429-real').map((m) => m.body)).toEqual([
      { blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'blocks only' } }] },
    ]);
  });

  it('the real delivery sends 5 messages in order within the rate limit, with no 429', async () => {
    const lines: string[] = [];
    const logger: Log = {
      debug: () => undefined,
      info: () => undefined,
      warn: (m) => lines.push(m),
      error: (m) => lines.push(m),
    };
    const delivery = createSlackDelivery({ logger });
    const url = sink.url('real');
    requests.clear();
    await Promise.all([1, 2, 3, 4, 5].map((n) => delivery.send(url, { text: `message ${n}` })));
    await delivery.drain();
    const got = sink.messages('real');
    expect(got.map((m) => m.body.text)).toEqual([1, 2, 3, 4, 5].map((n) => `message ${n}`));
    for (let i = 1; i < got.length; i++) {
      expect((got[i]?.at ?? 0) - (got[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(1000);
    }
    expect(requests.entries.filter((e) => e.status === 429)).toEqual([]);
    expect(lines).toEqual([]);
  }, 12_000);
});
