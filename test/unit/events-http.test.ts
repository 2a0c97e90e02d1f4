import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PushAuthOptions } from '../../shared/events/gcp.ts';
import {
  errorResponse,
  fromApiGatewayV2,
  type HttpRequest,
  header,
  intakeAzure,
  intakeGcp,
  MAX_BODY_BYTES,
} from '../../shared/events/http.ts';
import { EventAuthError, MalformedEventError, UnsupportedEventError } from '../../shared/events/model.ts';
import { entraClaims, googlePushClaims, type JwksServer, startJwksServer } from '../sandbox/oidc.ts';

const AUDIENCE = 'https://events.fleetward.example/gcp';
const PUSHER = 'pubsub-push@example-project.iam.gserviceaccount.com';
const SECRET = 'shared-secret-for-tests';
const TENANT = '99999999-8888-7777-6666-555555555555';

const text = (path: string) => readFileSync(`test/fixtures/events/${path}`, 'utf8');

function request(over: Partial<HttpRequest>): HttpRequest {
  return { method: 'POST', headers: { 'content-type': 'application/json' }, query: {}, body: '', ...over };
}

/** A body of valid JSON just over the limit. */
const oversized = () => JSON.stringify({ padding: 'x'.repeat(MAX_BODY_BYTES) });

let jwks: JwksServer;
let gcp: PushAuthOptions;
beforeAll(async () => {
  jwks = await startJwksServer();
  gcp = { audience: AUDIENCE, serviceAccountEmail: PUSHER, jwksUrl: jwks.url };
});
afterAll(() => jwks.close());

const bearer = async () => `Bearer ${await jwks.sign(googlePushClaims(AUDIENCE, PUSHER))}`;

describe('intakeGcp', () => {
  it('accepts an authenticated push and returns its event', async () => {
    // Prepare
    const req = request({
      headers: { authorization: await bearer() },
      body: text('gcp/notification-upgrade.json'),
    });

    // Act
    const result = await intakeGcp(req, gcp);

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.events.map((e) => [e.type, e.cluster.name])).toEqual([['updated', 'test-cluster']]);
  });

  it('accepts a push in CloudEvents structured mode', async () => {
    // Prepare
    const req = request({
      headers: {
        authorization: await bearer(),
        'content-type': 'application/cloudevents+json; charset=utf-8',
      },
      body: text('gcp/cloudevent-notification-upgrade-available.json'),
    });

    // Act
    const result = await intakeGcp(req, gcp);

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.events.map((e) => [e.id, e.type, e.cluster.name])).toEqual([
      ['2070443601311540', 'version-available', 'example-cluster'],
    ]);
  });

  it('decodes a base64 body from API Gateway', async () => {
    const event = {
      requestContext: { http: { method: 'POST' } },
      headers: { Authorization: await bearer() },
      queryStringParameters: undefined,
      body: Buffer.from(text('gcp/notification-upgrade-available.json')).toString('base64'),
      isBase64Encoded: true,
    } as unknown as APIGatewayProxyEventV2;

    const result = await intakeGcp(fromApiGatewayV2(event), gcp);

    expect(result.response.statusCode).toBe(200);
    expect(result.events[0]?.type).toBe('version-available');
  });

  it.each<[string, () => Promise<Record<string, string>>]>([
    ['no token', async () => ({})],
    [
      'a forged token',
      async () => ({ authorization: `Bearer ${await jwks.forge(googlePushClaims(AUDIENCE, PUSHER))}` }),
    ],
    [
      'a token for another audience',
      async () => ({
        authorization: `Bearer ${await jwks.sign(googlePushClaims('https://x.example', PUSHER))}`,
      }),
    ],
  ])('answers 401 with a generic body to %s, before reading the body', async (_what, headers) => {
    const result = await intakeGcp(request({ headers: await headers(), body: 'not even json' }), gcp);

    expect(result.response.statusCode).toBe(401);
    expect(JSON.parse(result.response.body)).toEqual({ error: 'unauthorized' });
    expect(result.events).toEqual([]);
  });

  it.each([
    ['a body that is not JSON', '{', 'body: expected JSON'],
    ['an empty body', '', 'body: expected a JSON body'],
    ['an envelope without message', '{"subscription":"s"}', 'message:'],
  ])('answers 400 with the reason to %s', async (_what, body, reason) => {
    const result = await intakeGcp(request({ headers: { authorization: await bearer() }, body }), gcp);

    expect(result.response.statusCode).toBe(400);
    expect(JSON.parse(result.response.body).error).toContain(reason);
  });

  it('answers 202 and counts a message it does not act on', async () => {
    const req = request({
      headers: { authorization: await bearer() },
      body: text('gcp/notification-upgrade.json').replace('UpgradeEvent', 'SomethingNewEvent'),
    });

    const result = await intakeGcp(req, gcp);

    expect(result.response.statusCode).toBe(202);
    expect(JSON.parse(result.response.body)).toEqual({ ignored: 1 });
    expect(result.ignored).toBe(1);
  });

  it.each([
    ['plain', false],
    ['base64', true],
  ])('answers 413 to a %s body over 256 KB before authenticating', async (_how, base64) => {
    const body = base64 ? Buffer.from(oversized()).toString('base64') : oversized();

    const result = await intakeGcp(request({ body, isBase64Encoded: base64 }), gcp);

    expect(result.response.statusCode).toBe(413);
  });

  it('answers 405 to a GET', async () => {
    expect((await intakeGcp(request({ method: 'GET' }), gcp)).response.statusCode).toBe(405);
  });
});

describe('intakeAzure', () => {
  const secret = { auth: { type: 'secret' as const, secret: SECRET } };

  it('accepts a batch with the secret in the query and counts what it ignores', async () => {
    const body = JSON.stringify([
      ...JSON.parse(text('azure/eventgrid-resource-delete-aks.json')),
      ...JSON.parse(text('azure/eventgrid-resource-write-storage.json')),
    ]);

    const result = await intakeAzure(request({ query: { code: SECRET }, body }), secret);

    expect(result.response.statusCode).toBe(200);
    expect(JSON.parse(result.response.body)).toEqual({ accepted: 1, ignored: 1 });
    expect(result.events.map((e) => e.type)).toEqual(['deleted']);
  });

  it('answers the Event Grid validation handshake', async () => {
    const req = request({
      headers: { 'x-fleetward-secret': SECRET },
      body: text('azure/eventgrid-subscription-validation.json'),
    });

    const result = await intakeAzure(req, secret);

    expect(result.response.statusCode).toBe(200);
    expect(JSON.parse(result.response.body)).toEqual({
      validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
    });
    expect(result.events).toEqual([]);
  });

  it('answers the validation handshake and returns the other events of its batch', async () => {
    // Prepare
    const body = JSON.stringify([
      ...JSON.parse(text('azure/eventgrid-subscription-validation.json')),
      ...JSON.parse(text('azure/eventgrid-resource-delete-aks.json')),
    ]);

    // Act
    const result = await intakeAzure(request({ query: { code: SECRET }, body }), secret);

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(JSON.parse(result.response.body)).toEqual({
      validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6',
      accepted: 1,
      ignored: 0,
    });
    expect(result.validationResponse).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    expect(result.events.map((e) => e.type)).toEqual(['deleted']);
  });

  it('answers the CloudEvents OPTIONS handshake', async () => {
    const req = request({
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' },
      query: { code: SECRET },
    });

    const result = await intakeAzure(req, secret);

    expect(result.response.statusCode).toBe(200);
    expect(result.response.headers['WebHook-Allowed-Origin']).toBe('eventgrid.azure.net');
    expect(result.response.headers['WebHook-Allowed-Rate']).toBe('*');
  });

  it('accepts a CloudEvent with an Entra ID token', async () => {
    const token = await jwks.sign(entraClaims(TENANT, 'api://fleetward'));
    const req = request({
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/cloudevents+json' },
      body: text('azure/cloudevent-new-kubernetes-version.json'),
    });

    const result = await intakeAzure(req, {
      auth: { type: 'entra', tenantId: TENANT, audience: 'api://fleetward', jwksUrl: jwks.url },
    });

    expect(result.response.statusCode).toBe(200);
    expect(result.events[0]?.type).toBe('version-available');
  });

  it.each<[string, Partial<HttpRequest>]>([
    ['no secret', { body: text('azure/eventgrid-cluster-support-ended.json') }],
    [
      'a wrong secret',
      { query: { code: 'guess' }, body: text('azure/eventgrid-cluster-support-ended.json') },
    ],
    ['a validation event without the secret', { body: text('azure/eventgrid-subscription-validation.json') }],
    [
      'an OPTIONS handshake without the secret',
      { method: 'OPTIONS', headers: { 'webhook-request-origin': 'x.example' } },
    ],
  ])('answers 401 to %s', async (_what, over) => {
    const result = await intakeAzure(request(over), secret);

    expect(result.response.statusCode).toBe(401);
    expect(JSON.parse(result.response.body)).toEqual({ error: 'unauthorized' });
    expect(result.events).toEqual([]);
  });

  it('answers 202 with the count when nothing in the batch is acted on', async () => {
    const req = request({
      query: { code: SECRET },
      body: text('azure/eventgrid-resource-write-storage.json'),
    });

    const result = await intakeAzure(req, secret);

    expect(result.response.statusCode).toBe(202);
    expect(JSON.parse(result.response.body)).toEqual({ ignored: 1 });
  });

  it.each([
    ['not JSON', '[', 'body: expected JSON'],
    [
      'an event without type',
      JSON.stringify([{ id: '1', subject: '', eventTime: '2024-01-01T00:00:00Z' }]),
      '0.eventType:',
    ],
  ])('answers 400 to a body that is %s', async (_what, body, reason) => {
    const result = await intakeAzure(request({ query: { code: SECRET }, body }), secret);

    expect(result.response.statusCode).toBe(400);
    expect(JSON.parse(result.response.body).error).toContain(reason);
  });

  it('answers 413 to a body over 256 KB even with the right secret', async () => {
    const result = await intakeAzure(request({ query: { code: SECRET }, body: oversized() }), secret);

    expect(result.response.statusCode).toBe(413);
  });
});

describe('errorResponse', () => {
  it.each([
    [new EventAuthError('bad signature'), 401, { error: 'unauthorized' }],
    [
      new MalformedEventError('message.data: expected base64'),
      400,
      { error: 'message.data: expected base64' },
    ],
    [new UnsupportedEventError('not ours', 'X'), 202, { ignored: 1 }],
  ])('maps %s', (error, status, body) => {
    const response = errorResponse(error);

    expect(response.statusCode).toBe(status);
    expect(JSON.parse(response.body)).toEqual(body);
  });

  it('rethrows anything else for the error boundary', () => {
    expect(() => errorResponse(new TypeError('bug'))).toThrow(TypeError);
  });
});

describe('header', () => {
  it('finds a header whatever its case', () => {
    expect(header({ 'WebHook-Request-Origin': 'a' }, 'webhook-request-origin')).toBe('a');
  });
});
