/**
 * `npm run bench -- discover`: discovery of 1,000 clusters (600 EKS over 3 accounts x 10
 * regions, 250 GKE, 150 AKS) against the sandbox with 20 ms injected latency per call.
 *
 * Measured side by side in one run:
 *  1. a calibration pass (no injected latency, concurrency 1) gives each operation's own
 *     service time s_op on the emulators, with no queueing;
 *  2. the timed pass (20 ms latency, configured concurrency) gives the wall time and the
 *     calls made by operation.
 * The lower bound per cloud is the largest of: the critical path of dependent calls
 * (AssumeRole -> ListClusters pages -> DescribeCluster), the total call time divided by the
 * allowed concurrency, and the emulator's serial service time (moto answers one request at
 * a time). Clouds run in parallel, so the fleet's bound is the largest cloud bound.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { run } from '../../shared/jobs/discover.ts';
import { discoverDeps } from '../../shared/runtime/deps.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { startSandbox } from '../sandbox/index.ts';
import { group, median } from './measure.ts';

export async function benchDiscover(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      latency: { type: 'string', default: '20' },
      aws: { type: 'string', default: '600' },
      gcp: { type: 'string', default: '250' },
      azure: { type: 'string', default: '150' },
    },
  });
  const latencyMs = Number(values.latency);
  const mix = {
    aws: Number(values.aws),
    gcp: Number(values.gcp),
    azure: Number(values.azure),
    kubeconfig: 0,
  };
  const TARGET_RATIO = 1.5;

  type Cloud = 'aws' | 'gcp' | 'azure';

  /** Runs one discovery with the given per-cloud concurrency; returns wall time and the requests it made. */
  async function pass(
    config: FleetConfig,
    sandbox: Awaited<ReturnType<typeof startSandbox>>,
    concurrency: Record<Cloud, number>,
  ) {
    const tuned: FleetConfig = structuredClone(config);
    if (tuned.clouds.aws) tuned.clouds.aws.concurrency = concurrency.aws;
    if (tuned.clouds.gcp) tuned.clouds.gcp.concurrency = concurrency.gcp;
    if (tuned.clouds.azure) tuned.clouds.azure.concurrency = concurrency.azure;
    tuned.state = { type: 'sqlite', path: ':memory:' };
    const deps = await discoverDeps(tuned, silentLogger);
    sandbox.log.clear();
    const started = performance.now();
    const result = await run(deps);
    const wallMs = performance.now() - started;
    await deps.store.close();
    return { wallMs, result, requests: [...sandbox.log.entries] };
  }

  process.stderr.write(`Seeding ${mix.aws} EKS, ${mix.gcp} GKE and ${mix.azure} AKS clusters...\n`);
  const sandbox = await startSandbox({ mix, dir: '.fleetward/bench', velero: false });
  try {
    const config = await loadConfig(sandbox.configPath);
    const configured: Record<Cloud, number> = {
      aws: config.clouds.aws?.concurrency ?? 1,
      gcp: config.clouds.gcp?.concurrency ?? 1,
      azure: config.clouds.azure?.concurrency ?? 1,
    };

    process.stderr.write('Calibrating service time per operation (no latency, one call at a time)...\n');
    sandbox.faults.latencyMs = 0;
    const calibration = await pass(config, sandbox, { aws: 1, gcp: 1, azure: 1 });
    const service = new Map(
      [...group(calibration.requests)].map(([op, rs]) => [op, median(rs.map((r) => r.durationMs ?? 0))]),
    );

    process.stderr.write(
      `Timed run: ${latencyMs} ms latency per call, concurrency aws=${configured.aws} gcp=${configured.gcp} azure=${configured.azure}...\n`,
    );
    sandbox.faults.latencyMs = latencyMs;
    const timed = await pass(config, sandbox, configured);
    const calls = group(timed.requests);
    const count = (op: string) => calls.get(op)?.length ?? 0;
    const t = (op: string) => latencyMs + (service.get(op) ?? 0);
    const s = (op: string) => service.get(op) ?? 0;
    const sum = (cloud: Cloud, f: (op: string) => number) =>
      [...calls.entries()]
        .filter(([op]) => op.startsWith(`${cloud}:`))
        .reduce((acc, [op, rs]) => acc + rs.length * f(op), 0);

    // Longest chain of dependent calls per cloud.
    const awsListPages = Math.max(
      0,
      ...[...Map.groupBy(calls.get('aws:ListClusters') ?? [], (r) => `${r.scope}/${r.region}`).values()].map(
        (rs) => rs.length,
      ),
    );
    const azurePages = Math.max(
      0,
      ...[...Map.groupBy(calls.get('azure:managedClusters.list') ?? [], (r) => r.scope ?? '').values()].map(
        (rs) => rs.length,
      ),
    );
    const chain: Record<Cloud, number> = {
      aws:
        t('aws:AssumeRole') +
        (count('aws:DescribeRegions') > 0 ? t('aws:DescribeRegions') : 0) +
        awsListPages * t('aws:ListClusters') +
        (count('aws:DescribeCluster') > 0 ? t('aws:DescribeCluster') : 0),
      gcp: count('gcp:ListClusters') > 0 ? t('gcp:ListClusters') : 0,
      azure: azurePages * t('azure:managedClusters.list'),
    };
    const bound = (cloud: Cloud) => {
      const latencyBound = Math.max(chain[cloud], sum(cloud, t) / configured[cloud]);
      const serverBound = sum(cloud, s);
      return { latencyBound, serverBound, bound: Math.max(latencyBound, serverBound) };
    };
    const bounds = { aws: bound('aws'), gcp: bound('gcp'), azure: bound('azure') };
    const lowerBound = Math.max(bounds.aws.bound, bounds.gcp.bound, bounds.azure.bound);
    const ratio = timed.wallMs / lowerBound;

    const eks = timed.result.clusters.filter((c) => c.cloud === 'aws').length;
    const gke = timed.result.clusters.filter((c) => c.cloud === 'gcp').length;
    const aks = timed.result.clusters.filter((c) => c.cloud === 'azure').length;
    const perCluster = {
      gcp: [...calls.keys()]
        .filter((op) => op.startsWith('gcp:') && op !== 'gcp:ListClusters')
        .reduce((n, op) => n + count(op), 0),
      azure: [...calls.keys()]
        .filter((op) => op.startsWith('azure:') && op !== 'azure:managedClusters.list')
        .reduce((n, op) => n + count(op), 0),
    };
    const fmt = (ms: number) => `${ms.toFixed(0)} ms`;

    console.log(
      `discover: ${timed.result.clusters.length} clusters (${eks} EKS, ${gke} GKE, ${aks} AKS), ${latencyMs} ms injected latency per call`,
    );
    console.log(`wall time: ${fmt(timed.wallMs)}; failures: ${timed.result.failures.length}`);
    console.log('API calls by operation (timed run):');
    for (const [op, rs] of [...calls.entries()].sort()) {
      console.log(
        `  ${op.padEnd(30)} ${String(rs.length).padStart(5)}   service time ${s(op).toFixed(1)} ms`,
      );
    }
    for (const cloud of ['aws', 'gcp', 'azure'] as const) {
      const b = bounds[cloud];
      console.log(
        `lower bound ${cloud.padEnd(5)} ${fmt(b.bound)} (critical path/concurrency ${fmt(b.latencyBound)}, emulator serial time ${fmt(b.serverBound)}; concurrency ${configured[cloud]})`,
      );
    }
    const describePerEks = eks === 0 ? 0 : count('aws:DescribeCluster') / eks;
    console.log(
      `DescribeCluster per EKS cluster: ${describePerEks.toFixed(2)}; per-cluster calls GKE ${perCluster.gcp}, AKS ${perCluster.azure}`,
    );
    console.log(
      `ratio: ${ratio.toFixed(2)} (wall ${fmt(timed.wallMs)} / lower bound ${fmt(lowerBound)}; target <= ${TARGET_RATIO})`,
    );
    const ok =
      ratio <= TARGET_RATIO &&
      describePerEks === 1 &&
      perCluster.gcp === 0 &&
      perCluster.azure === 0 &&
      timed.result.failures.length === 0 &&
      timed.result.clusters.length === mix.aws + mix.gcp + mix.azure;
    console.log(ok ? 'result: PASS' : 'result: FAIL');
    return ok ? 0 : 1;
  } finally {
    await sandbox.stop();
  }
}
