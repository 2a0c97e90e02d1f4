import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AzureEventAuth,
  parseEventGridBody,
  verifyEventGridRequest,
  webhookValidationHeaders,
} from '../../shared/events/azure.ts';
import { EventAuthError, MalformedEventError } from '../../shared/events/model.ts';
import { entraClaims, entraV1Claims, type JwksServer, startJwksServer } from '../sandbox/oidc.ts';

const TENANT = '99999999-8888-7777-6666-555555555555';
const AUDIENCE = 'api://fleetward-events';
const SUB = '11111111-2222-3333-4444-555555555555';
const AKS = { cloud: 'azure', scope: SUB, region: '', name: 'example-aks', resourceGroup: 'example-rg' };

const read = (name: string) => JSON.parse(readFileSync(`test/fixtures/events/azure/${name}`, 'utf8'));

describe('parseEventGridBody', () => {
  it.each([
    [
      'eventgrid-new-kubernetes-version.json',
      'version-available',
      'Microsoft.ContainerService.NewKubernetesVersionAvailable',
      {
        latestSupportedKubernetesVersion: '1.20.7',
        latestStableKubernetesVersion: '1.19.11',
        lowestMinorKubernetesVersion: '1.18.19',
        latestPreviewKubernetesVersion: '1.21.1',
      },
    ],
    [
      'cloudevent-new-kubernetes-version.json',
      'version-available',
      'Microsoft.ContainerService.NewKubernetesVersionAvailable',
      expect.objectContaining({ latestStableKubernetesVersion: '1.19.11' }),
    ],
    [
      'eventgrid-cluster-support-ending.json',
      'support-ending',
      'Microsoft.ContainerService.ClusterSupportEnding',
      { kubernetesVersion: '1.23.15' },
    ],
    [
      'eventgrid-cluster-support-ended.json',
      'support-ended',
      'Microsoft.ContainerService.ClusterSupportEnded',
      { kubernetesVersion: '1.23.15' },
    ],
    [
      'eventgrid-resource-write-aks.json',
      'updated',
      'Microsoft.Resources.ResourceWriteSuccess',
      { operationName: 'Microsoft.ContainerService/managedClusters/write', status: 'Succeeded' },
    ],
    [
      'eventgrid-resource-delete-aks.json',
      'deleted',
      'Microsoft.Resources.ResourceDeleteSuccess',
      { operationName: 'Microsoft.ContainerService/managedClusters/delete', status: 'Succeeded' },
    ],
  ])('normalises %s to a %s event', (file, type, providerType, detail) => {
    // Prepare
    const body = read(file);
    const first = Array.isArray(body) ? body[0] : body;

    // Act
    const result = parseEventGridBody(body);

    // Assess
    expect(result.ignored).toBe(0);
    expect(result.events).toEqual([
      {
        id: first.id,
        source: 'azure',
        type,
        providerType,
        cluster: AKS,
        occurredAt: first.eventTime ?? first.time,
        detail,
      },
    ]);
  });

  it('reads a CloudEvents batch', () => {
    const one = read('cloudevent-new-kubernetes-version.json');

    const result = parseEventGridBody([
      one,
      {
        ...one,
        id: 'second',
        type: 'Microsoft.ContainerService.ClusterSupportEnded',
        data: { kubernetesVersion: '1.27.1' },
      },
    ]);

    expect(result.events.map((e) => [e.id, e.type])).toEqual([
      [one.id, 'version-available'],
      ['second', 'support-ended'],
    ]);
  });

  it('answers the subscription validation event with its code', () => {
    const result = parseEventGridBody(read('eventgrid-subscription-validation.json'));

    expect(result.validationResponse).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    expect(result.events).toEqual([]);
  });

  it('answers the validation event and keeps the other events of its batch', () => {
    // Prepare
    const body = [
      ...read('eventgrid-subscription-validation.json'),
      ...read('eventgrid-resource-delete-aks.json'),
    ];

    // Act
    const result = parseEventGridBody(body);

    // Assess
    expect(result.validationResponse).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });
    expect(result.events.map((e) => [e.type, e.cluster.name])).toEqual([['deleted', 'example-aks']]);
    expect(result.ignored).toBe(0);
  });

  it('counts events about other resources and types as ignored and keeps the rest', () => {
    const body = [
      ...read('eventgrid-resource-write-storage.json'),
      ...read('eventgrid-resource-delete-aks.json'),
      {
        ...read('eventgrid-cluster-support-ended.json')[0],
        id: 'np',
        eventType: 'Microsoft.ContainerService.NodePoolRollingStarted',
      },
      {
        ...read('eventgrid-resource-write-aks.json')[0],
        id: 'pool',
        data: {
          resourceUri: `/subscriptions/${SUB}/resourceGroups/example-rg/providers/Microsoft.ContainerService/managedClusters/example-aks/agentPools/np1`,
        },
      },
    ];

    const result = parseEventGridBody(body);

    expect(result.events.map((e) => e.type)).toEqual(['deleted']);
    expect(result.ignored).toBe(3);
    expect(result.ignoredReasons.map((r) => r.providerType)).toEqual([
      'Microsoft.Resources.ResourceWriteSuccess',
      'Microsoft.ContainerService.NodePoolRollingStarted',
      'Microsoft.Resources.ResourceWriteSuccess',
    ]);
  });

  it.each<[string, unknown, string]>([
    ['an empty array', [], 'body'],
    ['an event without id', [{ ...read('eventgrid-cluster-support-ended.json')[0], id: undefined }], '0.id'],
    [
      'a CloudEvent of another spec version',
      { ...read('cloudevent-new-kubernetes-version.json'), specversion: '0.3' },
      'specversion',
    ],
    [
      'a validation event without code',
      [{ ...read('eventgrid-subscription-validation.json')[0], data: {} }],
      'data.validationCode',
    ],
    [
      'an AKS event whose topic is no cluster',
      [
        {
          ...read('eventgrid-cluster-support-ended.json')[0],
          topic: '/subscriptions/x',
          subject: 'example-aks',
        },
      ],
      'topic',
    ],
  ])('rejects %s, naming the field', (_what, body, field) => {
    const error = (() => {
      try {
        parseEventGridBody(body);
      } catch (e) {
        return e;
      }
    })();

    expect(error).toBeInstanceOf(MalformedEventError);
    expect((error as MalformedEventError).reason.startsWith(`${field}:`)).toBe(true);
  });
});

describe('webhookValidationHeaders', () => {
  it('grants the origin of a CloudEvents OPTIONS handshake', () => {
    expect(
      webhookValidationHeaders('OPTIONS', { 'webhook-request-origin': 'eventgrid.azure.net' }),
    ).toMatchObject({
      'WebHook-Allowed-Origin': 'eventgrid.azure.net',
      'WebHook-Allowed-Rate': '*',
    });
  });

  it.each([
    ['POST', { 'webhook-request-origin': 'eventgrid.azure.net' }],
    ['OPTIONS', {}],
  ])('ignores %s without a handshake', (method, headers) => {
    expect(webhookValidationHeaders(method, headers)).toBeUndefined();
  });
});

describe('verifyEventGridRequest', () => {
  const secret: AzureEventAuth = { type: 'secret', secret: 's3cret-value-for-tests' };

  it.each([
    ['the code query parameter', { headers: {}, query: { code: 's3cret-value-for-tests' } }],
    ['the delivery header', { headers: { 'x-fleetward-secret': 's3cret-value-for-tests' }, query: {} }],
  ])('accepts the shared secret in %s', async (_where, request) => {
    await expect(verifyEventGridRequest(request, secret)).resolves.toBeUndefined();
  });

  it.each([
    ['no secret', { headers: {}, query: {} }, 'no secret presented'],
    ['a wrong secret', { headers: {}, query: { code: 's3cret-value-for-test' } }, 'secret mismatch'],
    [
      'a longer wrong secret',
      { headers: { 'x-fleetward-secret': 's3cret-value-for-tests!' }, query: {} },
      'secret mismatch',
    ],
  ])('refuses %s', async (_what, request, reason) => {
    const error = await verifyEventGridRequest(request, secret).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(EventAuthError);
    expect((error as EventAuthError).reason).toBe(reason);
  });

  describe('with Entra ID', () => {
    let jwks: JwksServer;
    let entra: AzureEventAuth;
    beforeAll(async () => {
      jwks = await startJwksServer();
      entra = { type: 'entra', tenantId: TENANT, audience: AUDIENCE, jwksUrl: jwks.url };
    });
    afterAll(() => jwks.close());

    it.each([
      ['a v2.0 token', () => entraClaims(TENANT, AUDIENCE)],
      ['a v1.0 token (client in appid)', () => entraV1Claims(TENANT, AUDIENCE)],
    ])('accepts %s for the audience', async (_what, claims) => {
      const token = await jwks.sign(claims());

      await expect(
        verifyEventGridRequest({ headers: { authorization: `Bearer ${token}` }, query: {} }, entra),
      ).resolves.toBeUndefined();
    });

    it.each<[string, () => Promise<string | undefined>]>([
      ['no token', async () => undefined],
      ['a forged token', async () => jwks.forge(entraClaims(TENANT, AUDIENCE))],
      ['a wrong audience', async () => jwks.sign(entraClaims(TENANT, 'api://someone-else'))],
      [
        'another tenant',
        async () => jwks.sign(entraClaims('00000000-0000-0000-0000-000000000001', AUDIENCE)),
      ],
      [
        'a v2.0 token of another application in the tenant',
        async () =>
          jwks.sign({ ...entraClaims(TENANT, AUDIENCE), azp: '0a0a0a0a-0000-0000-0000-00000000abcd' }),
      ],
      [
        'a v1.0 token of another application in the tenant',
        async () =>
          jwks.sign({ ...entraV1Claims(TENANT, AUDIENCE), appid: '0a0a0a0a-0000-0000-0000-00000000abcd' }),
      ],
      [
        'a token that names no client application',
        async () => {
          const { azp: _azp, ...claims } = entraClaims(TENANT, AUDIENCE);
          return jwks.sign(claims);
        },
      ],
      [
        'a tenant claim that disagrees',
        async () => jwks.sign({ ...entraClaims(TENANT, AUDIENCE), tid: 'other' }),
      ],
      [
        'an expired token',
        async () =>
          jwks.sign(entraClaims(TENANT, AUDIENCE), { issuedAt: Math.floor(Date.now() / 1000) - 7200 }),
      ],
    ])('refuses %s', async (_what, token) => {
      const t = await token();
      const headers = t ? { authorization: `Bearer ${t}` } : {};

      await expect(
        verifyEventGridRequest({ headers, query: { code: 'not-used' } }, entra),
      ).rejects.toBeInstanceOf(EventAuthError);
    });
  });
});
