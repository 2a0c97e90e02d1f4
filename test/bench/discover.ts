/**
 * `npm run bench -- discover`: discovery of 1,000 clusters (600 EKS over 3 accounts x 10
 * regions, 250 GKE, 150 AKS) against the sandbox with 20 ms injected latency per call.
 *
 * AWS is answered by the in-memory responder (`test/sandbox/aws-memory.ts`, held to moto
 * by `test/contract/aws-memory.contract.test.ts`) behind the usual latency proxy, so the
 * real SDK clients run unchanged and the emulator's service time stays far below the
 * latency bound: the bench measures Fleetward, not moto (which answers one request at a
 * time, ~5 ms each: 600 DescribeClusters alone are ~3-4 s). Responder and proxy run on a
 * worker thread, so their CPU does not delay Fleetward's event loop (a real endpoint
 * spends none of the client's CPU). `--eks-emulator moto` runs the same bench on moto for
 * comparison; `--profile FILE` writes a CPU profile of the timed pass. GKE and AKS fakes
 * are in-memory already (their service time is printed too).
 *
 * Measured side by side in one run:
 *  1. a calibration pass (no injected latency, concurrency 1) gives each operation's own
 *     service time s_op on the emulators (proxy included), with no queueing;
 *  2. the timed pass (20 ms latency, configured concurrency) gives the wall time and the
 *     calls made by operation.
 * Bounds per cloud, with t_op = latency + s_op:
 *  - critical path: the longest chain of dependent calls
 *    (AssumeRole -> [DescribeRegions] -> ListClusters pages -> DescribeCluster);
 *  - calls/concurrency: sum of t_op over every call, divided by the allowed concurrency;
 *  - emulator service time: sum of s_op, the time a one-at-a-time emulator needs.
 * Clouds run in parallel, so each fleet bound is the largest cloud bound. The target is on
 * Fleetward's bound, `ratio = wall / max(critical path, calls/concurrency)` <= 1.5; a run
 * whose emulator bound exceeds that is reported as not measuring Fleetward (FAIL).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { run } from '../../shared/jobs/discover.ts';
import { discoverDeps } from '../../shared/runtime/deps.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import type { RequestInfo } from '../sandbox/faults.ts';
import { type SandboxBase, startSandbox } from '../sandbox/index.ts';
import { group, median } from './measure.ts';

export async function benchDiscover(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      latency: { type: 'string', default: '20' },
      aws: { type: 'string', default: '600' },
      gcp: { type: 'string', default: '250' },
      azure: { type: 'string', default: '150' },
      'eks-emulator': { type: 'string', default: 'memory' },
      /** Writes a V8 CPU profile of the timed pass (open it in Chrome DevTools or VS Code). */
      profile: { type: 'string' },
    },
  });
  const emulator = values['eks-emulator'];
  if (emulator !== 'memory' && emulator !== 'moto') {
    process.stderr.write('--eks-emulator must be memory or moto\n');
    return 2;
  }
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
  /** Latency and the request log on every cloud: the in-memory AWS stack keeps its own on its thread. */
  interface Clouds {
    sandbox: SandboxBase;
    setLatency(ms: number): Promise<void>;
    /** Requests since the last call, every cloud. */
    takeRequests(): Promise<RequestInfo[]>;
  }

  async function pass(config: FleetConfig, clouds: Clouds, concurrency: Record<Cloud, number>) {
    const tuned: FleetConfig = structuredClone(config);
    if (tuned.clouds.aws) tuned.clouds.aws.concurrency = concurrency.aws;
    if (tuned.clouds.gcp) tuned.clouds.gcp.concurrency = concurrency.gcp;
    if (tuned.clouds.azure) tuned.clouds.azure.concurrency = concurrency.azure;
    tuned.state = { type: 'sqlite', path: ':memory:' };
    const deps = await discoverDeps(tuned, silentLogger);
    await clouds.takeRequests();
    const cpu = process.cpuUsage();
    const started = performance.now();
    const result = await run(deps);
    const wallMs = performance.now() - started;
    const used = process.cpuUsage(cpu);
    await deps.store.close();
    return { wallMs, cpuMs: (used.user + used.system) / 1000, result, requests: await clouds.takeRequests() };
  }

  process.stderr.write(
    `Seeding ${mix.aws} EKS (${emulator === 'memory' ? 'in-memory AWS responder' : 'moto'}), ${mix.gcp} GKE and ${mix.azure} AKS clusters...\n`,
  );
  const options = { mix, dir: '.fleetward/bench', velero: false };
  let clouds: Clouds;
  if (emulator === 'memory') {
    const sandbox = await startSandbox({ ...options, aws: 'memory' });
    clouds = {
      sandbox,
      async setLatency(ms) {
        sandbox.faults.latencyMs = ms;
        await sandbox.awsMemory.setLatency(ms);
      },
      async takeRequests() {
        const requests = [...(await sandbox.awsMemory.takeRequests()), ...sandbox.log.entries];
        sandbox.log.clear();
        return requests;
      },
    };
  } else {
    const sandbox = await startSandbox({ ...options, aws: 'moto' });
    clouds = {
      sandbox,
      async setLatency(ms) {
        sandbox.faults.latencyMs = ms;
      },
      async takeRequests() {
        const requests = [...sandbox.log.entries];
        sandbox.log.clear();
        return requests;
      },
    };
  }
  const { sandbox } = clouds;
  try {
    const config = await loadConfig(sandbox.configPath);
    const configured: Record<Cloud, number> = {
      aws: config.clouds.aws?.concurrency ?? 1,
      gcp: config.clouds.gcp?.concurrency ?? 1,
      azure: config.clouds.azure?.concurrency ?? 1,
    };

    process.stderr.write('Calibrating service time per operation (no latency, one call at a time)...\n');
    await clouds.setLatency(0);
    const calibration = await pass(config, clouds, { aws: 1, gcp: 1, azure: 1 });
    const service = new Map(
      [...group(calibration.requests)].map(([op, rs]) => [op, median(rs.map((r) => r.durationMs ?? 0))]),
    );

    process.stderr.write(
      `Timed run: ${latencyMs} ms latency per call, concurrency aws=${configured.aws} gcp=${configured.gcp} azure=${configured.azure}...\n`,
    );
    await clouds.setLatency(latencyMs);
    const loadBefore = loadavg()[0]!;
    const profiler = values.profile ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const timed = await pass(config, clouds, configured);
    if (profiler && values.profile) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(values.profile, JSON.stringify(profile));
      profiler.disconnect();
      process.stderr.write(`CPU profile of the timed pass written to ${values.profile}\n`);
    }
    const loadAfter = loadavg()[0]!;
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
      const critical = chain[cloud];
      const callsPerSlot = sum(cloud, t) / configured[cloud];
      const emulatorBound = sum(cloud, s);
      return { critical, callsPerSlot, emulatorBound, bound: Math.max(critical, callsPerSlot) };
    };
    const bounds = { aws: bound('aws'), gcp: bound('gcp'), azure: bound('azure') };
    const cloudIds = ['aws', 'gcp', 'azure'] as const;
    const fleet = (k: 'critical' | 'callsPerSlot' | 'emulatorBound' | 'bound') =>
      Math.max(...cloudIds.map((c) => bounds[c][k]));
    const lowerBound = fleet('bound');
    const ratio = timed.wallMs / lowerBound;
    // The emulators must be far faster than the bound, or the run measures them, not Fleetward.
    const measuresFleetward = fleet('emulatorBound') <= lowerBound;

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
      `discover: ${timed.result.clusters.length} clusters (${eks} EKS, ${gke} GKE, ${aks} AKS), ${latencyMs} ms injected latency per call, AWS answered by ${emulator === 'memory' ? 'the in-memory responder' : 'moto'}`,
    );
    console.log(
      `wall time: ${fmt(timed.wallMs)}; failures: ${timed.result.failures.length}; process CPU ${fmt(timed.cpuMs)} (all threads, fakes included); load average ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)}`,
    );
    console.log('API calls by operation (timed run):');
    for (const [op, rs] of [...calls.entries()].sort()) {
      console.log(
        `  ${op.padEnd(30)} ${String(rs.length).padStart(5)}   service time ${s(op).toFixed(1)} ms`,
      );
    }
    for (const cloud of cloudIds) {
      const b = bounds[cloud];
      console.log(
        `bounds ${cloud.padEnd(5)} critical path ${fmt(b.critical)}, calls/concurrency ${fmt(b.callsPerSlot)} (concurrency ${configured[cloud]}), emulator service time ${fmt(b.emulatorBound)}`,
      );
    }
    console.log(`latency critical-path bound:      ${fmt(fleet('critical'))}`);
    console.log(`total-calls/concurrency bound:    ${fmt(fleet('callsPerSlot'))}`);
    console.log(
      `emulator service-time bound:      ${fmt(fleet('emulatorBound'))}${measuresFleetward ? '' : ' -- above the latency bounds: this run measures the emulator, not Fleetward'}`,
    );
    const describePerEks = eks === 0 ? 0 : count('aws:DescribeCluster') / eks;
    console.log(
      `DescribeCluster per EKS cluster: ${describePerEks.toFixed(2)}; per-cluster calls GKE ${perCluster.gcp}, AKS ${perCluster.azure}`,
    );
    console.log(
      `ratio = wall / max(critical path, calls/concurrency) = ${fmt(timed.wallMs)} / ${fmt(lowerBound)} = ${ratio.toFixed(2)} (target <= ${TARGET_RATIO})`,
    );
    const ok =
      ratio <= TARGET_RATIO &&
      measuresFleetward &&
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
