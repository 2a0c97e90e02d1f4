/**
 * `npm run bench -- backup`: one backup pass (preflight + create per cluster) and one
 * reconcile pass over 200 clusters with 20 ms injected latency per Kubernetes API call.
 *
 * Measured side by side in one run: a calibration pass (no latency, one call at a time,
 * an earlier schedule window) gives each operation's service time; the timed passes give
 * wall times and calls by operation. Lower bound of a pass = the larger of the total call
 * time divided by the allowed concurrency (kube calls share `kubeAccess.concurrency`;
 * cloud calls — STS, ARM, S3, GCS — are bounded per cloud) and the per-cluster chain of
 * dependent calls.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { parseConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import { run as backup } from '../../shared/jobs/backup.ts';
import { run as discover } from '../../shared/jobs/discover.ts';
import type { ClusterJobDeps } from '../../shared/jobs/fleet.ts';
import { run as reconcile } from '../../shared/jobs/reconcile-backups.ts';
import type { Cluster } from '../../shared/model.ts';
import { clusterJobDeps, discoverDeps } from '../../shared/runtime/deps.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import type { RequestInfo } from '../sandbox/faults.ts';
import { startSandbox } from '../sandbox/index.ts';
import { group, serviceTimes } from './measure.ts';

const TARGET_RATIO = 1.5;
/**
 * How long the simulated Velero takes per Backup. Longer than a pass, so the simulator's
 * own work (tarballs, uploads to object storage) happens between the passes instead of
 * competing for this process's CPU inside the measured one.
 */
const BACKUP_DELAY_MS = 4_000;
/** Dependent kube calls per cluster in a backup pass: discovery, CRD/Deployment reads, BSL list, namespace list, create. */
const BACKUP_CHAIN = 5;
/** Requests the Velero simulator makes itself (writing backup files), left out of counts and bounds. */
const SIMULATOR_WRITES = /^(gcp:objects\.insert|aws:PutObject$|azure:blob)/;

export async function benchBackup(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { latency: { type: 'string', default: '20' }, clusters: { type: 'string', default: '200' } },
  });
  const latencyMs = Number(values.latency);
  const total = Number(values.clusters);
  const mix = { aws: Math.round(total * 0.6), gcp: Math.round(total * 0.25), azure: 0, kubeconfig: 0 };
  mix.azure = total - mix.aws - mix.gcp;

  process.stderr.write(`Seeding ${total} clusters with Velero...\n`);
  const sandbox = await startSandbox({
    mix,
    dir: '.fleetward/bench-backup',
    veleroEverywhere: true,
    veleroDelays: { backupMs: BACKUP_DELAY_MS },
  });
  try {
    // Every seeded region belongs to a jurisdiction here (a `us` one is added), so every cluster is backed up.
    const raw = parse(readFileSync(sandbox.configPath, 'utf8')) as {
      jurisdictions: Record<string, unknown>;
      state: unknown;
    };
    raw.jurisdictions.us = { countries: ['US'] };
    raw.state = { type: 'sqlite', path: ':memory:' };
    const config = parseConfig(raw, sandbox.configPath);
    const d = await discoverDeps(config, silentLogger);
    const clusters: Cluster[] = (await discover(d)).clusters;
    await d.store.close();
    const backedUp = clusters.length;

    const deps = async (concurrency: number, day: string): Promise<ClusterJobDeps> => {
      const tuned: FleetConfig = structuredClone(config);
      tuned.kubeAccess.concurrency = concurrency;
      const base = await clusterJobDeps(tuned, silentLogger);
      await base.store.close();
      const store = new SqliteStateStore({ path: ':memory:' });
      await store.putMany(
        INVENTORY,
        clusters.map((c) => ({ key: c.id, value: c })),
      );
      return { ...base, store, clock: { now: () => new Date(`${day}T12:00:00Z`) } };
    };
    const timed = async <T>(fn: () => Promise<T>) => {
      sandbox.log.clear();
      const started = performance.now();
      const cpu = process.cpuUsage();
      const result = await fn();
      const used = process.cpuUsage(cpu);
      return {
        result,
        wallMs: performance.now() - started,
        cpuMs: (used.user + used.system) / 1000,
        requests: [...sandbox.log.entries],
      };
    };

    process.stderr.write('Calibrating service time per operation (no latency, one call at a time)...\n');
    sandbox.faults.latencyMs = 0;
    const cal = await deps(1, '2026-01-01');
    const calBackup = await timed(() => backup(cal, {}));
    await new Promise((r) => setTimeout(r, BACKUP_DELAY_MS + 2_000));
    const calReconcile = await timed(() => reconcile(cal, {}));
    const service = serviceTimes([...calBackup.requests, ...calReconcile.requests]);
    await cal.store.close();

    const concurrency = config.kubeAccess.concurrency;
    process.stderr.write(`Timed run: ${latencyMs} ms latency per call, kube concurrency ${concurrency}...\n`);
    sandbox.faults.latencyMs = latencyMs;
    const run = await deps(concurrency, '2026-01-02');
    const backupPass = await timed(() => backup(run, {}));
    await new Promise((r) => setTimeout(r, BACKUP_DELAY_MS + 2_000));
    const reconcilePass = await timed(() => reconcile(run, {}));
    await run.store.close();

    const t = (op: string) => latencyMs + (service.get(op) ?? 0);
    const bound = (requests: RequestInfo[], chain: number) => {
      const calls = group(requests);
      let kube = 0;
      const cloud: Record<string, number> = {};
      for (const [op, rs] of calls) {
        // The Velero simulator's own writes to object storage are not Fleetward's calls.
        if (SIMULATOR_WRITES.test(op)) continue;
        if (op.startsWith('kube:')) kube += rs.length * t(op);
        else cloud[op.split(':')[0]!] = (cloud[op.split(':')[0]!] ?? 0) + rs.length * t(op);
      }
      const cloudBound = Math.max(0, ...Object.values(cloud).map((ms) => ms / 8));
      return Math.max(kube / concurrency, cloudBound, chain * latencyMs);
    };
    const report = (
      name: string,
      pass: { wallMs: number; cpuMs: number; requests: RequestInfo[] },
      chain: number,
    ) => {
      const lb = bound(pass.requests, chain);
      console.log(
        `${name}: wall ${pass.wallMs.toFixed(0)} ms, lower bound ${lb.toFixed(0)} ms, ratio ${(pass.wallMs / lb).toFixed(2)} (process CPU ${pass.cpuMs.toFixed(0)} ms, fakes included)`,
      );
      for (const [op, rs] of [...group(pass.requests)].sort()) {
        if (SIMULATOR_WRITES.test(op)) continue;
        console.log(
          `  ${op.padEnd(44)} ${String(rs.length).padStart(5)}   service time ${(service.get(op) ?? 0).toFixed(1)} ms`,
        );
      }
      return pass.wallMs / lb;
    };

    const created = backupPass.result.outcomes.filter((o) => o.status === 'created').length;
    for (const o of backupPass.result.outcomes) {
      if (o.status === 'skipped')
        console.log(`  skipped ${o.clusterId}: ${o.findings.map((f) => f.message).join('; ')}`);
      if (o.status === 'failed') console.log(`  failed ${o.clusterId}: ${o.error.message}`);
    }
    const creates = group(backupPass.requests).get('kube:create:velero.io/v1/backups')?.length ?? 0;
    console.log(
      `backup: ${backedUp} clusters, ${latencyMs} ms injected latency per call, kube concurrency ${concurrency}`,
    );
    const r1 = report('backup pass', backupPass, BACKUP_CHAIN);
    const r2 = report('reconcile pass', reconcilePass, 1);
    console.log(
      `Backups created: ${created}; create calls: ${creates} (${(creates / backedUp).toFixed(2)} per cluster)`,
    );
    const ratio = Math.max(r1, r2);
    console.log(`ratio: ${ratio.toFixed(2)} (worst of the two passes; target <= ${TARGET_RATIO})`);
    const ok =
      ratio <= TARGET_RATIO &&
      created === backedUp &&
      creates === backedUp &&
      reconcilePass.result.statuses.length === backedUp;
    console.log(ok ? 'result: PASS' : 'result: FAIL');
    return ok ? 0 : 1;
  } finally {
    await sandbox.stop();
  }
}
