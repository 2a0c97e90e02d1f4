/**
 * The fake API server answers like a real one: read through @kubernetes/client-node
 * where the client parses the answer, and raw where the client throws the body away.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiException, ApisApi, CoreApi, KubeConfig, VersionApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultInjector, RequestLog } from '../sandbox/faults.ts';
import { type KubeFake, startKubeFake } from '../sandbox/kube-fake.ts';

/** The fields of k8s.io/apimachinery/pkg/version.Info (`omitempty` emulation fields aside). */
const VERSION_INFO_FIELDS = [
  'buildDate',
  'compiler',
  'gitCommit',
  'gitTreeState',
  'gitVersion',
  'goVersion',
  'major',
  'minor',
  'platform',
];

const certDir = mkdtempSync(join(tmpdir(), 'fleetward-kube-contract-'));
const log = new RequestLog();
const faults = new FaultInjector();
let fake: KubeFake;

function kubeConfig(server: string, ca: string, token: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, caData: Buffer.from(ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'ctx', cluster: 'c', user: 'u' }],
    currentContext: 'ctx',
  });
  return kc;
}

/** GET without the client, for the bodies the client does not keep. */
function rawGet(path: string, token: string): Promise<{ status: number; type: string; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${fake.url}${path}`,
      { ca: fake.ca, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: res.headers['content-type'] ?? '',
            body: JSON.parse(text),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  fake = await startKubeFake({ name: 'contract', gitVersion: 'v1.33.2', faults, log, certDir });
});
afterAll(async () => {
  await fake?.stop();
  rmSync(certDir, { recursive: true, force: true });
});

describe('kube fake: /version', () => {
  it('answers version.Info, read through the real VersionApi', async () => {
    const info = await kubeConfig(fake.url, fake.ca, 'sandbox-token').makeApiClient(VersionApi).getCode();
    expect(info).toMatchObject({ major: '1', minor: '33', gitVersion: 'v1.33.2', gitTreeState: 'clean' });
    expect(info.gitCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(Number.isNaN(Date.parse(info.buildDate))).toBe(false);
    expect(info.goVersion).toMatch(/^go\d+\.\d+/);
    expect(info.compiler).toBe('gc');
    expect(info.platform).toMatch(/^[a-z0-9]+\/[a-z0-9]+$/);
  });

  it('sends exactly the documented fields, all strings, as JSON', async () => {
    const res = await rawGet('/version', 'sandbox-token');
    expect(res.status).toBe(200);
    expect(res.type).toBe('application/json');
    expect(Object.keys(res.body as object).sort()).toEqual(VERSION_INFO_FIELDS);
    expect(Object.values(res.body as object).every((v) => typeof v === 'string')).toBe(true);
  });

  it('reports an upgrade, with the `+` minor of managed distributions', async () => {
    fake.setVersion('v1.34.1-eks-3025e55');
    try {
      const info = await kubeConfig(fake.url, fake.ca, 'sandbox-token').makeApiClient(VersionApi).getCode();
      expect(info).toMatchObject({ major: '1', minor: '34+', gitVersion: 'v1.34.1-eks-3025e55' });
    } finally {
      fake.setVersion('v1.33.2');
    }
  });

  it('logs requests under its own name', async () => {
    log.clear();
    await kubeConfig(fake.url, fake.ca, 'sandbox-token').makeApiClient(VersionApi).getCode();
    expect(log.entries).toEqual([
      expect.objectContaining({ cloud: 'kube', operation: 'GetVersion', scope: 'contract', status: 200 }),
    ]);
  });
});

describe('kube fake: discovery documents', () => {
  it('answers /api as APIVersions', async () => {
    const versions = await kubeConfig(fake.url, fake.ca, 'sandbox-token')
      .makeApiClient(CoreApi)
      .getAPIVersions();
    expect(versions.versions).toEqual(['v1']);
    expect(versions.serverAddressByClientCIDRs[0]).toEqual({
      clientCIDR: '0.0.0.0/0',
      serverAddress: new URL(fake.url).host,
    });
    expect((await rawGet('/api', 'sandbox-token')).body).toMatchObject({ kind: 'APIVersions' });
  });

  it('answers /apis as APIGroupList', async () => {
    const list = await kubeConfig(fake.url, fake.ca, 'sandbox-token').makeApiClient(ApisApi).getAPIVersions();
    expect(list.kind).toBe('APIGroupList');
    expect(list.apiVersion).toBe('v1');
    const apps = list.groups.find((g) => g.name === 'apps');
    expect(apps?.versions).toEqual([{ groupVersion: 'apps/v1', version: 'v1' }]);
    expect(apps?.preferredVersion).toEqual({ groupVersion: 'apps/v1', version: 'v1' });
  });
});

describe('kube fake: errors', () => {
  it('answers a wrong token with a 401 Status', async () => {
    const res = await rawGet('/version', 'sandbox-token-wrong');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
    const call = kubeConfig(fake.url, fake.ca, 'sandbox-token-wrong').makeApiClient(VersionApi).getCode();
    await expect(call).rejects.toBeInstanceOf(ApiException);
    await expect(call).rejects.toMatchObject({ code: 401 });
  });

  it('answers an unknown path with a 404 Status', async () => {
    const res = await rawGet('/apis/velero.io/v1/backups', 'sandbox-token');
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404 });
  });

  it('injects throttling as a 429 Status with Retry-After', async () => {
    faults.add({
      cloud: 'kube',
      operation: 'GetVersion',
      scope: 'contract',
      fault: { kind: 'throttle' },
      times: 1,
    });
    const res = await rawGet('/version', 'sandbox-token');
    expect(res.status).toBe(429);
    expect(res.body).toMatchObject({ kind: 'Status', reason: 'TooManyRequests', code: 429 });
    expect((await rawGet('/version', 'sandbox-token')).status).toBe(200);
  });
});
