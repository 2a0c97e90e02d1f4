/**
 * Kubeconfig discovery against fake API servers over HTTPS, through the real
 * @kubernetes/client-node: versions, missing contexts, dead servers, bad tokens,
 * timeouts, throttling and where each cluster sits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDiscovery } from '../../shared/clouds/kubeconfig/discovery.ts';
import type { KubeconfigSource } from '../../shared/config/schema.ts';
import type { Log } from '../../shared/ports.ts';
import { FaultInjector, RequestLog } from '../sandbox/faults.ts';
import { type KubeFake, startKubeFake } from '../sandbox/kube-fake.ts';
import { writeKubeconfig } from '../sandbox/kubeconfig.ts';

const dir = mkdtempSync(join(tmpdir(), 'fleetward-kubeconfig-it-'));
const certDir = join(dir, 'certs');
const file = join(dir, 'kube', 'config');
const log = new RequestLog();
const faultsA = new FaultInjector();
const faultsB = new FaultInjector();
let frankfurt: KubeFake;
let mumbai: KubeFake;
let doomed: KubeFake;

const logLines: unknown[] = [];
const logger: Log = {
  debug: (m, ...e) => logLines.push([m, e]),
  info: (m, ...e) => logLines.push([m, e]),
  warn: (m, ...e) => logLines.push([m, e]),
  error: (m, ...e) => logLines.push([m, e]),
};

beforeAll(async () => {
  [frankfurt, mumbai, doomed] = await Promise.all([
    startKubeFake({ name: 'frankfurt', gitVersion: 'v1.33.2', faults: faultsA, log, certDir }),
    startKubeFake({ name: 'mumbai', gitVersion: 'v1.32.5-gke.1200000', faults: faultsB, log, certDir }),
    startKubeFake({ name: 'doomed', log, certDir }),
  ]);
  const viaFrankfurt = { cluster: 'frankfurt', server: frankfurt.url, ca: frankfurt.ca };
  const viaMumbai = { cluster: 'mumbai', server: mumbai.url, caFile: mumbai.caFile };
  writeKubeconfig(file, [
    { context: 'eks-frankfurt', ...viaFrankfurt, token: 'sandbox-token' },
    { context: 'gke-mumbai', ...viaMumbai, token: 'sandbox-token', namespace: 'payments' },
    { context: 'aks-johannesburg', ...viaFrankfurt, token: 'sandbox-token' },
    { context: 'onprem-nairobi', ...viaMumbai, token: 'sandbox-token' },
    { context: 'doomed', cluster: 'doomed', server: doomed.url, ca: doomed.ca, token: 'sandbox-token' },
    { context: 'stale-token', ...viaFrankfurt, token: 'sandbox-token-revoked' },
    ...Array.from({ length: 12 }, (_, i) => ({
      context: `edge-${i}`,
      ...viaFrankfurt,
      token: 'sandbox-token',
    })),
  ]);
  await doomed.stop();
});

afterAll(async () => {
  await Promise.all([frankfurt?.stop(), mumbai?.stop(), doomed?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  log.clear();
  faultsA.clear();
  faultsB.clear();
  faultsA.latencyMs = 0;
});

const source = (contexts: KubeconfigSource['contexts'], timeoutMs = 5_000): KubeconfigSource => ({
  alias: 'lab',
  file,
  timeoutMs,
  contexts,
});

const discover = (sources: KubeconfigSource[], probe?: boolean) =>
  createDiscovery(sources, probe === undefined ? { logger } : { logger, probe }).discover();

describe('kubeconfig discovery with probing', () => {
  it('returns every cluster with its version', async () => {
    const outcome = await discover([
      source([
        { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
        { name: 'gke-mumbai', cloud: 'gcp', region: 'asia-south1' },
      ]),
    ]);
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters).toEqual([
      expect.objectContaining({
        id: 'kubeconfig/lab/eu-central-1/eks-frankfurt',
        kubernetesVersion: '1.33.2',
        status: 'running',
        endpoint: frankfurt.url,
      }),
      expect.objectContaining({
        id: 'kubeconfig/lab/asia-south1/gke-mumbai',
        kubernetesVersion: '1.32.5-gke.1200000',
        status: 'running',
        endpoint: mumbai.url,
      }),
    ]);
    expect(outcome.completedScopes).toEqual([
      { cloud: 'kubeconfig', scope: 'lab', region: 'eu-central-1' },
      { cloud: 'kubeconfig', scope: 'lab', region: 'asia-south1' },
    ]);
    expect(log.count('kube', 'GetVersion')).toBe(2);
  });

  it('reports an upgrade on the next run', async () => {
    const contexts = [{ name: 'gke-mumbai', cloud: 'gcp' as const, region: 'asia-south1' }];
    mumbai.setVersion('v1.33.1-gke.1000000');
    try {
      const outcome = await discover([source(contexts)]);
      expect(outcome.clusters[0]?.kubernetesVersion).toBe('1.33.1-gke.1000000');
    } finally {
      mumbai.setVersion('v1.32.5-gke.1200000');
    }
  });

  it('places aws, gcp and azure regions by the region table and on-premises contexts by their country', async () => {
    const outcome = await discover([
      source([
        { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
        { name: 'gke-mumbai', cloud: 'gcp', region: 'asia-south1' },
        { name: 'aks-johannesburg', cloud: 'azure', region: 'southafricanorth' },
        { name: 'onprem-nairobi', region: 'nairobi-dc1', country: 'KE' },
      ]),
    ]);
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters.map((c) => [c.name, c.region, c.country, c.status])).toEqual([
      ['eks-frankfurt', 'eu-central-1', 'DE', 'running'],
      ['gke-mumbai', 'asia-south1', 'IN', 'running'],
      ['aks-johannesburg', 'southafricanorth', 'ZA', 'running'],
      ['onprem-nairobi', 'nairobi-dc1', 'KE', 'running'],
    ]);
  });

  it('reports a context the file does not have and still probes the others', async () => {
    const outcome = await discover([
      source([
        { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
        { name: 'eks-stockholm', cloud: 'aws', region: 'eu-north-1' },
      ]),
    ]);
    expect(outcome.clusters.map((c) => [c.name, c.status])).toEqual([['eks-frankfurt', 'running']]);
    expect(outcome.failures).toEqual([
      {
        cloud: 'kubeconfig',
        scope: 'lab',
        region: 'eu-north-1',
        kind: 'scope',
        error: { name: 'FleetwardError', message: 'context "eks-stockholm" is not in kubeconfig "lab"' },
      },
    ]);
    expect(outcome.completedScopes).toEqual([{ cloud: 'kubeconfig', scope: 'lab', region: 'eu-central-1' }]);
  });

  it('keeps the cluster of a stopped server, as unknown, and reports the failure', async () => {
    const outcome = await discover([
      source([
        { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
        { name: 'doomed', cloud: 'aws', region: 'eu-west-1' },
      ]),
    ]);
    expect(outcome.clusters).toEqual([
      expect.objectContaining({ name: 'eks-frankfurt', status: 'running', kubernetesVersion: '1.33.2' }),
      expect.objectContaining({
        id: 'kubeconfig/lab/eu-west-1/doomed',
        status: 'unknown',
        kubernetesVersion: null,
        endpoint: doomed.url,
        country: 'IE',
      }),
    ]);
    expect(outcome.failures).toEqual([
      {
        cloud: 'kubeconfig',
        scope: 'lab',
        region: 'eu-west-1',
        kind: 'scope',
        error: {
          name: 'CloudApiError',
          message: 'context "doomed": get version: cannot reach the server (ECONNREFUSED)',
        },
      },
    ]);
    expect(outcome.completedScopes).toEqual([{ cloud: 'kubeconfig', scope: 'lab', region: 'eu-central-1' }]);
  });

  it('reports a rejected token with its status and never logs a token', async () => {
    logLines.length = 0;
    const outcome = await discover([source([{ name: 'stale-token', cloud: 'aws', region: 'eu-central-1' }])]);
    expect(outcome.clusters).toEqual([
      expect.objectContaining({ name: 'stale-token', status: 'unknown', kubernetesVersion: null }),
    ]);
    expect(outcome.failures).toEqual([
      expect.objectContaining({
        scope: 'lab',
        region: 'eu-central-1',
        kind: 'scope',
        error: {
          name: 'CloudApiError',
          message: 'context "stale-token": get version unauthorized (check the credentials): HTTP 401',
          status: 401,
        },
      }),
    ]);
    expect(outcome.completedScopes).toEqual([]);
    expect(JSON.stringify([outcome, logLines])).not.toMatch(/sandbox-token/);
  });

  it('gives up on a server that does not answer within timeoutMs', async () => {
    faultsB.add({ cloud: 'kube', operation: 'GetVersion', scope: 'mumbai', fault: { kind: 'timeout' } });
    const started = Date.now();
    const outcome = await discover([
      source(
        [
          { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
          { name: 'gke-mumbai', cloud: 'gcp', region: 'asia-south1' },
        ],
        300,
      ),
    ]);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(outcome.clusters.map((c) => [c.name, c.status])).toEqual([
      ['eks-frankfurt', 'running'],
      ['gke-mumbai', 'unknown'],
    ]);
    expect(outcome.failures.map((f) => f.error.message)).toEqual([
      'context "gke-mumbai": get version timed out after 300 ms',
    ]);
  });

  it('reports an unreadable version answer', async () => {
    faultsA.add({ cloud: 'kube', operation: 'GetVersion', fault: { kind: 'malformed' } });
    const outcome = await discover([
      source([{ name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' }]),
    ]);
    expect(outcome.clusters[0]).toMatchObject({ status: 'unknown', kubernetesVersion: null });
    expect(outcome.failures[0]?.error.message).toMatch(
      /^context "eks-frankfurt": get version: unreadable answer/,
    );
  });

  it('gives up on a server that keeps answering 503', async () => {
    faultsA.add({ cloud: 'kube', operation: 'GetVersion', fault: { kind: 'error', status: 503 } });
    const outcome = await discover([
      source([{ name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' }]),
    ]);
    expect(outcome.clusters[0]).toMatchObject({ status: 'unknown', kubernetesVersion: null });
    expect(outcome.failures[0]?.error).toEqual({
      name: 'CloudApiError',
      message: 'context "eks-frankfurt": get version failed: HTTP 503',
      status: 503,
    });
    expect(log.count('kube', 'GetVersion')).toBe(3);
  });

  it('retries a throttled probe', async () => {
    faultsA.add({
      cloud: 'kube',
      operation: 'GetVersion',
      fault: { kind: 'throttle', retryAfterSeconds: 0 },
      times: 1,
    });
    const outcome = await discover([
      source([{ name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' }]),
    ]);
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters[0]).toMatchObject({ status: 'running', kubernetesVersion: '1.33.2' });
    expect(log.entries.map((e) => e.status)).toEqual([429, 200]);
  });

  it('probes at most 8 contexts at once', async () => {
    faultsA.latencyMs = 150;
    const contexts = Array.from({ length: 12 }, (_, i) => ({ name: `edge-${i}`, region: 'edge-1' }));
    const outcome = await discover([source(contexts)]);
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters).toHaveLength(12);
    const spans = log.entries.map((e) => [e.at!, e.at! + e.durationMs!] as const);
    const overlap = Math.max(
      ...spans.map(([start]) => spans.filter(([s, end]) => s <= start && start < end).length),
    );
    expect(overlap).toBeLessThanOrEqual(8);
    expect(overlap).toBeGreaterThan(1);
  });

  it('does not call any server when probing is off', async () => {
    const outcome = await discover(
      [
        source([
          { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
          { name: 'doomed', cloud: 'aws', region: 'eu-west-1' },
        ]),
      ],
      false,
    );
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters.map((c) => [c.name, c.status, c.kubernetesVersion])).toEqual([
      ['eks-frankfurt', 'unknown', null],
      ['doomed', 'unknown', null],
    ]);
    expect(log.entries).toEqual([]);
  });

  it('rejects when the run is aborted mid-probe', async () => {
    faultsB.add({ cloud: 'kube', operation: 'GetVersion', fault: { kind: 'timeout' } });
    const controller = new AbortController();
    const run = createDiscovery([source([{ name: 'gke-mumbai', cloud: 'gcp', region: 'asia-south1' }])], {
      logger,
    }).discover({ signal: controller.signal });
    setTimeout(() => controller.abort(new Error('run cancelled')), 100);
    await expect(run).rejects.toThrow('run cancelled');
  });
});
