import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDiscovery } from '../../shared/clouds/kubeconfig/discovery.ts';
import type { KubeconfigSource } from '../../shared/config/schema.ts';
import type { Log } from '../../shared/ports.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'kubeconfig', 'basic.yaml');
const tmp = mkdtempSync(join(tmpdir(), 'fleetward-kubeconfig-unit-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function recordingLogger(): Log & { lines: unknown[] } {
  const lines: unknown[] = [];
  const at =
    (level: string) =>
    (message: string, ...extra: object[]) =>
      lines.push({ level, message, extra });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

const basic = (contexts: KubeconfigSource['contexts'], file = FIXTURE): KubeconfigSource => ({
  alias: 'lab',
  file,
  timeoutMs: 1_000,
  contexts,
});

describe('kubeconfig discovery without probing', () => {
  it('normalises every configured context of the file', async () => {
    const logger = recordingLogger();
    const discovery = createDiscovery(
      [
        basic([
          { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
          { name: 'gke-mumbai', cloud: 'gcp', region: 'asia-south1' },
          { name: 'onprem-nairobi', region: 'nairobi-dc1', country: 'KE' },
        ]),
      ],
      { logger, probe: false },
    );
    expect(discovery.cloud).toBe('kubeconfig');
    const outcome = await discovery.discover();
    expect(outcome.failures).toEqual([]);
    expect(outcome.clusters).toEqual([
      {
        id: 'kubeconfig/lab/eu-central-1/eks-frankfurt',
        cloud: 'kubeconfig',
        scope: 'lab',
        region: 'eu-central-1',
        name: 'eks-frankfurt',
        kubernetesVersion: null,
        endpoint: 'https://127.0.0.1:16443',
        endpointAccess: 'unknown',
        secretsEncryptionKey: null,
        auditLogging: null,
        tags: {},
        status: 'unknown',
        providerStatus: null,
        createdAt: null,
        country: 'DE',
      },
      expect.objectContaining({
        id: 'kubeconfig/lab/asia-south1/gke-mumbai',
        // kubeconfig servers lose a trailing slash
        endpoint: 'https://127.0.0.1:16444',
        country: 'IN',
        status: 'unknown',
        kubernetesVersion: null,
      }),
      expect.objectContaining({
        id: 'kubeconfig/lab/nairobi-dc1/onprem-nairobi',
        region: 'nairobi-dc1',
        country: 'KE',
      }),
    ]);
    expect(outcome.completedScopes).toEqual([
      { cloud: 'kubeconfig', scope: 'lab', region: 'eu-central-1' },
      { cloud: 'kubeconfig', scope: 'lab', region: 'asia-south1' },
      { cloud: 'kubeconfig', scope: 'lab', region: 'nairobi-dc1' },
    ]);
    expect(JSON.stringify(logger.lines)).not.toContain('sandbox-token');
  });

  it('lets the configured country win over the region table and leaves unknown places null', async () => {
    const outcome = await createDiscovery(
      [
        basic([
          // an on-premises cluster that borrows an AWS region name but sits elsewhere
          { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1', country: 'AT' },
          { name: 'gke-mumbai', region: 'asia-south1' },
          { name: 'onprem-nairobi', cloud: 'azure', region: 'nairobi-dc1' },
        ]),
      ],
      { logger: recordingLogger(), probe: false },
    ).discover();
    expect(outcome.clusters.map((c) => [c.name, c.country])).toEqual([
      ['eks-frankfurt', 'AT'],
      ['gke-mumbai', null],
      ['onprem-nairobi', null],
    ]);
  });

  it('reports a context missing from the file and keeps the region incomplete', async () => {
    const outcome = await createDiscovery(
      [
        basic([
          { name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' },
          { name: 'eks-paris', cloud: 'aws', region: 'eu-west-3' },
        ]),
      ],
      { logger: recordingLogger(), probe: false },
    ).discover();
    expect(outcome.clusters.map((c) => c.name)).toEqual(['eks-frankfurt']);
    expect(outcome.failures).toEqual([
      {
        cloud: 'kubeconfig',
        scope: 'lab',
        region: 'eu-west-3',
        kind: 'scope',
        error: { name: 'FleetwardError', message: 'context "eks-paris" is not in kubeconfig "lab"' },
      },
    ]);
    expect(outcome.completedScopes).toEqual([{ cloud: 'kubeconfig', scope: 'lab', region: 'eu-central-1' }]);
  });

  it('reports a missing file as one failure for its alias and goes on with other sources', async () => {
    const outcome = await createDiscovery(
      [
        { ...basic([{ name: 'a', region: 'x1' }]), alias: 'gone', file: join(tmp, 'absent.yaml') },
        basic([{ name: 'eks-frankfurt', cloud: 'aws', region: 'eu-central-1' }]),
      ],
      { logger: recordingLogger(), probe: false },
    ).discover();
    expect(outcome.failures).toEqual([
      {
        cloud: 'kubeconfig',
        scope: 'gone',
        kind: 'scope',
        error: { name: 'FleetwardError', message: 'cannot load kubeconfig "gone": file not found' },
      },
    ]);
    expect(outcome.clusters.map((c) => c.id)).toEqual(['kubeconfig/lab/eu-central-1/eks-frankfurt']);
    expect(outcome.completedScopes).toEqual([{ cloud: 'kubeconfig', scope: 'lab', region: 'eu-central-1' }]);
  });

  it('never quotes an invalid file, which may hold credentials', async () => {
    const file = join(tmp, 'broken.yaml');
    writeFileSync(file, 'users:\n- name: a\n  user:\n    token: sandbox-token\n  bad: [\n');
    const logger = recordingLogger();
    const outcome = await createDiscovery([basic([{ name: 'a', region: 'x1' }], file)], {
      logger,
      probe: false,
    }).discover();
    expect(outcome.clusters).toEqual([]);
    expect(outcome.failures).toHaveLength(1);
    expect(outcome.failures[0]?.error.message).toMatch(
      /^cannot load kubeconfig "lab": invalid YAML: .+ at line \d+$/,
    );
    expect(JSON.stringify([outcome, logger.lines])).not.toContain('sandbox-token');
  });

  it('rejects when the signal is already aborted', async () => {
    const discovery = createDiscovery([basic([{ name: 'eks-frankfurt', region: 'eu-central-1' }])], {
      logger: recordingLogger(),
      probe: false,
    });
    await expect(discovery.discover({ signal: AbortSignal.abort(new Error('stop')) })).rejects.toThrow(
      'stop',
    );
  });
});
