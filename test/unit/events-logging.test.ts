/**
 * The HTTP event endpoints with Powertools' event logging switched on
 * (`POWERTOOLS_LOGGER_LOG_EVENT=true`): the invocation event is logged, but never the Event
 * Grid secret (`?code=`), a bearer token or the shared-secret header.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import { REDACTED, redactEventForLog } from '../../shared/runtime/redact-event.ts';

const SECRET_ENV = 'FLEETWARD_TEST_LOGGING_EVENTGRID_SECRET';
/** Not credentials: per-run random values, so finding them in a log can only mean they leaked. */
const SECRET = `code-${randomUUID()}`;
const TOKEN = `eyJ${randomUUID().replaceAll('-', '')}.eyJ${randomUUID().replaceAll('-', '')}.sig${randomUUID().slice(0, 8)}`;
const HEADER_SECRET = `hdr-${randomUUID()}`;
const URL_TOKEN = `tok-${randomUUID()}`;

/** The SubscriptionValidationEvent sample (test/fixtures/events/README.md) with `token=<token>` in its validationUrl. */
function validationBody(token: string): string {
  const sample = readFileSync('test/fixtures/events/azure/eventgrid-subscription-validation.json', 'utf8');
  const body = sample.replace('token=EXAMPLE', `token=${token}`);
  if (body === sample) throw new Error('the sample no longer has token=EXAMPLE');
  return body;
}

const config = parseConfig({
  version: 1,
  clouds: {
    aws: {
      accounts: [
        { id: '111111111111', roleArn: 'arn:aws:iam::111111111111:role/r', regions: ['eu-central-1'] },
      ],
    },
  },
  jurisdictions: { eu: { preset: 'eu-gdpr' } },
  events: {
    gcp: {
      audience: 'https://events.fleetward.example/gcp',
      serviceAccountEmail: 'push@p.iam.gserviceaccount.com',
    },
    azure: { auth: { type: 'secret', secret: { from: 'env', name: SECRET_ENV } } },
  },
});

function request(
  path: string,
  rawQueryString: string,
  headers: Record<string, string>,
): APIGatewayProxyEventV2 {
  const query = Object.fromEntries(new URLSearchParams(rawQueryString));
  return {
    version: '2.0',
    routeKey: `POST ${path}`,
    rawPath: path,
    rawQueryString,
    headers: { 'content-type': 'application/json', ...headers },
    queryStringParameters: query,
    requestContext: {
      accountId: '111111111111',
      apiId: 'test',
      domainName: 'test.execute-api.localhost',
      domainPrefix: 'test',
      http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: randomUUID(),
      routeKey: `POST ${path}`,
      stage: '$default',
      time: new Date().toISOString(),
      timeEpoch: Date.now(),
    },
    body: '[]',
    isBase64Encoded: false,
  };
}

const context = (name: string) =>
  ({
    functionName: name,
    awsRequestId: randomUUID(),
    getRemainingTimeInMillis: () => 60_000,
  }) as unknown as Context;

describe('event endpoints with POWERTOOLS_LOGGER_LOG_EVENT=true', () => {
  let output: string[];

  beforeEach(() => {
    vi.stubEnv('POWERTOOLS_LOGGER_LOG_EVENT', 'true');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'INFO');
    vi.stubEnv(SECRET_ENV, SECRET);
    vi.resetModules();
    output = [];
    const capture = (chunk: unknown) => {
      output.push(String(chunk));
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
  });

  afterEach(() => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
  });

  const wiring = {
    config: async () => config,
    intake: async () => {
      throw new Error('a refused request must not open the event intake');
    },
  };

  it('logs the Event Grid request without its ?code= secret, bearer token or secret header', async () => {
    // Prepare
    const { createAzureClusterEventsHandler } = await import(
      '../../functions/azure-cluster-events/handler.ts'
    );
    const handler = createAzureClusterEventsHandler(wiring);
    const event = request('/events/azure', `code=${encodeURIComponent(SECRET)}&x=1`, {
      authorization: `Bearer ${TOKEN}`,
      'x-fleetward-secret': HEADER_SECRET,
    });

    // Act
    await handler(event, context('azure-cluster-events'));

    // Assess
    const logged = output.join('');
    expect(logged).toContain('Lambda invocation event');
    expect(logged).toContain('/events/azure');
    expect(logged).not.toContain(SECRET);
    expect(logged).not.toContain(encodeURIComponent(SECRET));
    expect(logged).not.toContain(TOKEN);
    expect(logged).not.toContain(HEADER_SECRET);
  });

  it('logs the Event Grid validation handshake without the token in its validationUrl', async () => {
    // Prepare: the documented SubscriptionValidationEvent, its placeholder token made a per-run value
    const { createAzureClusterEventsHandler } = await import(
      '../../functions/azure-cluster-events/handler.ts'
    );
    const handler = createAzureClusterEventsHandler(wiring);
    const event = request('/events/azure', `code=${encodeURIComponent(SECRET)}`, {});
    event.body = validationBody(URL_TOKEN);

    // Act
    await handler(event, context('azure-cluster-events'));

    // Assess
    const logged = output.join('');
    expect(logged).toContain('Lambda invocation event');
    expect(logged).toContain('Microsoft.EventGrid.SubscriptionValidationEvent');
    expect(logged).toContain('eventsubscriptions/myeventsub/validate?');
    expect(logged).not.toContain(URL_TOKEN);
  });

  it('logs the Pub/Sub push request without its bearer token', async () => {
    // Prepare
    const { createGcpClusterEventsHandler } = await import('../../functions/gcp-cluster-events/handler.ts');
    const handler = createGcpClusterEventsHandler(wiring);
    const event = request('/events/gcp', '', { Authorization: `Bearer ${TOKEN}` });

    // Act
    await handler(event, context('gcp-cluster-events'));

    // Assess
    const logged = output.join('');
    expect(logged).toContain('Lambda invocation event');
    expect(logged).not.toContain(TOKEN);
  });
});

describe('redactEventForLog: URLs in the request body', () => {
  const event = (body: string, isBase64Encoded = false) => ({
    headers: { 'content-type': 'application/json' },
    body: isBase64Encoded ? Buffer.from(body).toString('base64') : body,
    isBase64Encoded,
  });

  it('redacts the query values of every URL in a JSON body, keeping names and everything else', () => {
    // Act
    const out = redactEventForLog(event(validationBody(URL_TOKEN))) as { body: string };

    // Assess
    const [logged] = JSON.parse(out.body);
    expect(logged.eventType).toBe('Microsoft.EventGrid.SubscriptionValidationEvent');
    expect(logged.data.validationCode).toBe('512d38b6-c7b8-40c8-89fe-f46f9e9622b6');
    expect(logged.data.validationUrl).toBe(
      `https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/myeventsub/validate?id=${REDACTED}&t=${REDACTED}&apiVersion=${REDACTED}&token=${REDACTED}`,
    );
  });

  it('redacts a URL in a base64-encoded body', () => {
    // Act
    const out = redactEventForLog(event(validationBody(URL_TOKEN), true)) as { body: string };

    // Assess
    const decoded = Buffer.from(out.body, 'base64').toString('utf8');
    expect(decoded).toContain('validate?id=');
    expect(decoded).not.toContain(URL_TOKEN);
  });

  it('redacts a URL in a body that is not JSON', () => {
    // Act
    const out = redactEventForLog(event(`see https://example.test/cb?sig=${URL_TOKEN}&x=1 and more`)) as {
      body: string;
    };

    // Assess
    expect(out.body).toBe(`see https://example.test/cb?sig=${REDACTED}&x=${REDACTED} and more`);
  });
});
