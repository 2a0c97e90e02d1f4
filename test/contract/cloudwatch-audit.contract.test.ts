/**
 * Contract: moto's FilterLogEvents answer uses the field names, nesting and wire types of
 * the CloudWatch Logs API reference (fixture: the documented response sample with
 * placeholder values), and the audit source's event mapping reads the documented sample
 * and moto's answer alike.
 */
import { Readable } from 'node:stream';
import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventKey } from '../../shared/audit/chunks.ts';
import { AUDIT_STREAM_PREFIX, auditIdOf, toAuditEvents } from '../../shared/clouds/aws/audit.ts';
import fixture from '../fixtures/aws/filter-log-events.json' with { type: 'json' };
import { auditSeedKey, SEED_ROLE, type SeededAuditLog, seedAuditLogs } from '../sandbox/aws-audit.ts';
import { type MotoServer, startMoto } from '../sandbox/moto.ts';

/** Keeps a copy of every response body the SDK receives. */
class CapturingHandler extends NodeHttpHandler {
  readonly bodies: string[] = [];
  override async handle(
    ...args: Parameters<NodeHttpHandler['handle']>
  ): ReturnType<NodeHttpHandler['handle']> {
    const out = await super.handle(...args);
    const chunks: Buffer[] = [];
    for await (const chunk of out.response.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
    const body = Buffer.concat(chunks);
    this.bodies.push(body.toString('utf8'));
    out.response.body = Readable.from([body]);
    return out;
  }
}

type Shape = Map<string, string>;

/** Every path of a JSON value with its JSON type; array items share the path `x[]`. */
function shapeOf(value: unknown, path = '', into: Shape = new Map()): Shape {
  if (Array.isArray(value)) {
    into.set(path, 'array');
    for (const item of value) shapeOf(item, `${path}[]`, into);
  } else if (value !== null && typeof value === 'object') {
    if (path) into.set(path, 'object');
    for (const [k, v] of Object.entries(value)) shapeOf(v, path ? `${path}.${k}` : k, into);
  } else {
    into.set(path, value === null ? 'null' : typeof value);
  }
  return into;
}

/** The FilterLogEvents response fields the API reference documents (and the sample shows). */
const DOCUMENTED: Record<string, string> = {
  events: 'array',
  'events[]': 'object',
  'events[].logStreamName': 'string',
  'events[].timestamp': 'number',
  'events[].message': 'string',
  'events[].ingestionTime': 'number',
  'events[].eventId': 'string',
  searchedLogStreams: 'array',
  'searchedLogStreams[]': 'object',
  'searchedLogStreams[].logStreamName': 'string',
  'searchedLogStreams[].searchedCompletely': 'boolean',
  nextToken: 'string',
};

const ACCOUNT = '111122223333';
const REGION = 'eu-central-1';
const CLUSTER = { account: ACCOUNT, region: REGION, name: 'contract-eu' };
const START = new Date(Math.floor((Date.now() - 3_600_000) / 1000) * 1000);

let moto: MotoServer;
let log: SeededAuditLog;
let handler: CapturingHandler;
let logs: CloudWatchLogsClient;

beforeAll(async () => {
  moto = await startMoto();
  const seeded = await seedAuditLogs(moto.url, [CLUSTER], {
    eventsPerCluster: 20,
    start: START,
    spacingMs: 1000,
    malformed: 2,
  });
  const found = seeded.get(auditSeedKey(CLUSTER));
  if (!found) throw new Error('not seeded');
  log = found;
  const sts = new STSClient({
    endpoint: moto.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  const assumed = await sts.send(
    new AssumeRoleCommand({ RoleArn: SEED_ROLE(ACCOUNT), RoleSessionName: 'contract' }),
  );
  sts.destroy();
  const c = assumed.Credentials;
  if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error('no credentials');
  handler = new CapturingHandler();
  logs = new CloudWatchLogsClient({
    endpoint: moto.url,
    region: REGION,
    requestHandler: handler,
    credentials: {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      sessionToken: c.SessionToken,
    },
  });
});

afterAll(async () => {
  logs?.destroy();
  await moto?.stop();
});

describe('FilterLogEvents contract', () => {
  it('the documented sample has the documented fields', () => {
    const documented = shapeOf(fixture);
    for (const [path, type] of Object.entries(DOCUMENTED))
      expect([path, documented.get(path)]).toEqual([path, type]);
  });

  it("moto's answer has the documented field names, nesting and wire types", async () => {
    handler.bodies.length = 0;
    // A page smaller than the log, so the answer carries a nextToken.
    const out = await logs.send(
      new FilterLogEventsCommand({
        logGroupName: log.logGroupName,
        logStreamNamePrefix: AUDIT_STREAM_PREFIX,
        startTime: START.getTime(),
        endTime: START.getTime() + 60_000,
        limit: 5,
      }),
    );
    expect(out.events).toHaveLength(5);
    const raw = JSON.parse(handler.bodies.at(-1) ?? '{}');
    const moto = shapeOf(raw);
    const missing = Object.entries(DOCUMENTED).filter(([path, type]) => moto.get(path) !== type);
    expect(missing).toEqual([]);
    // Nothing moto sends is unknown to the reference sample.
    const documented = shapeOf(fixture);
    const unknown = [...moto.keys()].filter((path) => !documented.has(path));
    expect(unknown).toEqual([]);
    expect(raw.events[0].logStreamName).toBe(log.logStreamName);
  });

  it('the audit mapping reads the documented sample and moto alike', async () => {
    // The documented sample's messages are not audit Events: kept verbatim with a null auditID,
    // each identified by its eventId (the only thing that tells two such records apart).
    expect(toAuditEvents(fixture.events)).toEqual(
      fixture.events.map((e) => ({
        auditID: null,
        stage: null,
        recordId: e.eventId,
        timestamp: new Date(e.timestamp).toISOString(),
        raw: e.message,
      })),
    );
    expect(new Set(toAuditEvents(fixture.events).map(eventKey)).size).toBe(fixture.events.length);
    const out = await logs.send(
      new FilterLogEventsCommand({
        logGroupName: log.logGroupName,
        logStreamNamePrefix: AUDIT_STREAM_PREFIX,
        startTime: START.getTime(),
      }),
    );
    expect(toAuditEvents(out.events)).toEqual(
      log.lines.map((l, i) => ({
        auditID: l.auditID,
        stage: l.auditID === null ? null : 'ResponseComplete',
        recordId: out.events?.[i]?.eventId,
        timestamp: new Date(l.timestamp).toISOString(),
        raw: l.message,
      })),
    );
    expect(out.events?.every((e) => typeof e.eventId === 'string' && e.eventId !== '')).toBe(true);
    expect(auditIdOf('{"kind":"Event","auditID":"0c3b1e3e-8f4a-4f7e-9a53-2f1d7d0c9b11"}')).toBe(
      '0c3b1e3e-8f4a-4f7e-9a53-2f1d7d0c9b11',
    );
    expect(auditIdOf('[1,2]')).toBeNull();
    expect(auditIdOf('{"auditID":42}')).toBeNull();
  });
});
