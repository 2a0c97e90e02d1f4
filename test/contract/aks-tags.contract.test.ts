/**
 * AKS tag updates on the ARM fake through the real `ContainerServiceClient`:
 * `managedClusters.beginUpdateTagsAndWait` sends `PATCH {clusterId}` with a TagsObject
 * (`{ tags }`). The fake answers ARM's synchronous form of that long-running operation, 200 with
 * the updated ManagedCluster and no `Azure-AsyncOperation` header, which the SDK poller accepts
 * at once (the body's `provisioningState` is `Succeeded`).
 *
 * Semantics as ARM documents them: the body's tags replace the resource's tags (callers merge),
 * at most 50 tags, names up to 512 and values up to 256 characters, no `<>%&\?/` in names, and
 * names are case-insensitive (two names equal but for case are refused).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { ContainerServiceClient } from '@azure/arm-containerservice';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accessTokenCredential } from '../../shared/clouds/azure/discovery.ts';
import {
  ARM_TAG_LIMITS,
  type ArmFake,
  type ArmManagedCluster,
  aksCluster,
  EXAMPLE_SUBSCRIPTION,
  managedClusterId,
  startArmFake,
  validateArmTags,
} from '../sandbox/arm-fake.ts';
import { RequestLog } from '../sandbox/faults.ts';

const TOKEN_ENV = 'FLEETWARD_CONTRACT_ARM_TOKEN';
const credential = accessTokenCredential({ env: TOKEN_ENV }, { [TOKEN_ENV]: 'sandbox-token' });
const CLUSTER_ID = managedClusterId(EXAMPLE_SUBSCRIPTION, 'rg-fleet', 'aks-1');
/** The documented ManagedCluster sample (see arm-fake.contract.test.ts), beside the built clusters. */
const sample = JSON.parse(
  readFileSync(new URL('../fixtures/azure/aks-managed-cluster.json', import.meta.url), 'utf8'),
) as ArmManagedCluster & { tags: Record<string, string> };
const SAMPLE_SUBSCRIPTION = EXAMPLE_SUBSCRIPTION;

let certDir: string;
let fake: ArmFake;
const log = new RequestLog();

function client(subscription = EXAMPLE_SUBSCRIPTION): ContainerServiceClient {
  return new ContainerServiceClient(credential, subscription, {
    endpoint: fake.endpoint,
    credentials: { scopes: [`${fake.endpoint}/.default`] },
    tlsOptions: { ca: [...rootCertificates, fake.ca] },
    retryOptions: { maxRetries: 0 },
  });
}

function raw(
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fake.endpoint}${path}`,
      {
        method,
        ca: fake.ca,
        headers: { authorization: 'Bearer sandbox-token', 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const updateTags = (name: string, tags: Record<string, string>) =>
  client().managedClusters.beginUpdateTagsAndWait('rg-fleet', name, { tags });

beforeAll(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'fleetward-aks-tags-contract-'));
  fake = await startArmFake({ log, certDir });
  fake.setClusters(EXAMPLE_SUBSCRIPTION, [
    aksCluster({ resourceGroup: 'rg-fleet', name: 'aks-1', tags: { env: 'prod', team: 'platform' } }),
    aksCluster({ resourceGroup: 'rg-fleet', name: 'aks-2', tags: { env: 'dev' } }),
    sample,
  ]);
});

afterAll(async () => {
  await fake?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

describe('arm fake: AKS updateTags through the real ContainerServiceClient', () => {
  it('honours If-Match with the eTag of the documented sample: 200 and a new eTag, then 412 for the stale one', async () => {
    // The ManagedCluster of the REST reference example "Managed Clusters - Get" carries `eTag`.
    const sampleTags = (tags: Record<string, string>, ifMatch?: string) =>
      client(SAMPLE_SUBSCRIPTION).managedClusters.beginUpdateTagsAndWait(
        'rg1',
        'clustername1',
        { tags },
        ifMatch === undefined ? {} : { ifMatch },
      );
    const got = await client(SAMPLE_SUBSCRIPTION).managedClusters.get('rg1', 'clustername1');
    expect(got.eTag).toBe(sample.eTag);

    const updated = await sampleTags({ ...got.tags, team: 'platform' }, got.eTag);
    expect(updated.tags).toEqual({ ...sample.tags, team: 'platform' });
    expect(updated.eTag).toEqual(expect.any(String));
    expect(updated.eTag).not.toBe(got.eTag);

    await expect(sampleTags({ lost: 'yes' }, got.eTag)).rejects.toMatchObject({
      statusCode: 412,
      code: 'PreconditionFailed',
    });
    const after = await client(SAMPLE_SUBSCRIPTION).managedClusters.get('rg1', 'clustername1');
    expect(after.tags).toEqual({ ...sample.tags, team: 'platform' });
    expect(after.eTag).toBe(updated.eTag);
    // A tag change behind the client's back is a change too.
    fake.setClusterTags(sample.id, { other: 'writer' });
    await expect(sampleTags({ lost: 'yes' }, updated.eTag)).rejects.toMatchObject({ statusCode: 412 });
  });

  it('replaces the tags (no merge) and the get and the listing show them', async () => {
    const updated = await updateTags('aks-1', { costCenter: 'cc-42', owner: 'fleet' });

    expect(updated.id).toBe(CLUSTER_ID);
    expect(updated.tags).toEqual({ costCenter: 'cc-42', owner: 'fleet' });
    const got = await client().managedClusters.get('rg-fleet', 'aks-1');
    expect(got.tags).toEqual({ costCenter: 'cc-42', owner: 'fleet' });
    const listed: { name?: string; tags?: Record<string, string> }[] = [];
    for await (const c of client().managedClusters.list()) listed.push(c);
    expect(listed.find((c) => c.name === 'aks-1')?.tags).toEqual({ costCenter: 'cc-42', owner: 'fleet' });
    // The other cluster is untouched.
    expect(listed.find((c) => c.name === 'aks-2')?.tags).toEqual({ env: 'dev' });
  });

  it('merging is the caller’s job: read, merge, write', async () => {
    const current = await client().managedClusters.get('rg-fleet', 'aks-2');
    const merged = { ...current.tags, costCenter: 'cc-7' };

    const updated = await updateTags('aks-2', merged);

    expect(updated.tags).toEqual({ env: 'dev', costCenter: 'cc-7' });
  });

  it('empty tags clear them all', async () => {
    await updateTags('aks-2', { a: '1' });
    const cleared = await updateTags('aks-2', {});

    expect(cleared.tags ?? {}).toEqual({});
  });

  it('answers synchronously: 200 with the ManagedCluster and no async-operation header', async () => {
    const res = await raw(
      'PATCH',
      `${CLUSTER_ID.replace('resourceGroups', 'RESOURCEGROUPS')}?api-version=2025-05-01`,
      JSON.stringify({ tags: { wire: 'yes' } }),
    );

    expect(res.status).toBe(200);
    expect(res.headers['azure-asyncoperation']).toBeUndefined();
    expect(res.headers.location).toBeUndefined();
    const body = JSON.parse(res.body) as {
      id: string;
      tags: unknown;
      properties: { provisioningState: string };
    };
    expect(body.id).toBe(CLUSTER_ID);
    expect(body.tags).toEqual({ wire: 'yes' });
    expect(body.properties.provisioningState).toBe('Succeeded');
  });

  it('sees tags changed behind its back through the test hook', async () => {
    const hooked = fake.setClusterTags(CLUSTER_ID, { changedBy: 'someone-else' });

    expect(hooked.tags).toEqual({ changedBy: 'someone-else' });
    expect((await client().managedClusters.get('rg-fleet', 'aks-1')).tags).toEqual({
      changedBy: 'someone-else',
    });
    expect(() => fake.setClusterTags(CLUSTER_ID, { 'a/b': 'x' })).toThrow(/InvalidTagNameCharacters/);
    expect(() => fake.setClusterTags(managedClusterId(EXAMPLE_SUBSCRIPTION, 'rg-fleet', 'nope'), {})).toThrow(
      /no cluster/,
    );
  });

  it.each([
    ['a reserved character in a name', { 'cost/center': 'x' }, 'InvalidTagNameCharacters'],
    ['a question mark in a name', { 'what?': 'x' }, 'InvalidTagNameCharacters'],
    ['a name of 513 characters', { ['k'.repeat(513)]: 'x' }, 'InvalidTagNameLength'],
    ['a value of 257 characters', { k: 'v'.repeat(257) }, 'InvalidTagValueLength'],
    [
      '51 tags',
      Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`t${i}`, String(i)])),
      'TooManyTags',
    ],
    ['two names equal but for case', { Env: 'prod', env: 'dev' }, 'InvalidRequestContent'],
  ])('refuses %s with 400 %s and keeps the tags', async (_what, tags, code) => {
    const before = (await client().managedClusters.get('rg-fleet', 'aks-1')).tags;

    await expect(updateTags('aks-1', tags as Record<string, string>)).rejects.toMatchObject({
      name: 'RestError',
      statusCode: 400,
      code,
    });
    expect((await client().managedClusters.get('rg-fleet', 'aks-1')).tags).toEqual(before);
  });

  it('accepts tags right at the limits', async () => {
    const tags = Object.fromEntries(
      Array.from({ length: ARM_TAG_LIMITS.maxTags }, (_, i) => [
        `${String(i).padStart(2, '0')}${'k'.repeat(ARM_TAG_LIMITS.maxNameLength - 2)}`,
        'v'.repeat(ARM_TAG_LIMITS.maxValueLength),
      ]),
    );
    expect(validateArmTags(tags)).toBeUndefined();

    const updated = await updateTags('aks-2', tags);

    expect(Object.keys(updated.tags ?? {})).toHaveLength(50);
  });

  it('answers 404 for an unknown cluster and 400 for a body that is not JSON', async () => {
    await expect(updateTags('aks-missing', { a: 'b' })).rejects.toMatchObject({
      statusCode: 404,
      code: 'ResourceNotFound',
    });
    const res = await raw('PATCH', `${CLUSTER_ID}?api-version=2025-05-01`, '{"tags":');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'InvalidRequestContent' } });
  });

  it('logs managedClusters.updateTags with the subscription as scope', () => {
    const calls = fake.requests({ operation: 'managedClusters.updateTags' });

    expect(calls.length).toBeGreaterThanOrEqual(10);
    expect(calls[0]).toMatchObject({ cloud: 'azure', scope: EXAMPLE_SUBSCRIPTION, status: 200 });
    expect(calls.some((c) => c.status === 400)).toBe(true);
  });
});
