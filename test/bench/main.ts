/**
 * `npm run bench -- <name>`: the benchmarks. Each prints its wall time, its calls by
 * operation and the ratio to its lower bound, measured side by side in one run, and exits
 * 1 when a target is missed.
 */
import './env.ts';
import { benchAudit } from './audit.ts';
import { benchBackup } from './backup.ts';
import { benchDiscover } from './discover.ts';

const BENCHES: Record<string, { run: (args: string[]) => Promise<number>; about: string }> = {
  discover: {
    run: benchDiscover,
    about:
      '1,000 clusters (600 EKS, 250 GKE, 150 AKS), 20 ms latency: ratio <= 1.5, one DescribeCluster per EKS cluster, no per-cluster GKE/AKS calls',
  },
  audit: {
    run: benchAudit,
    about:
      '1 GB of audit events through collect into a local archive, 3 interleaved rounds: median >= 0.8x the in-process zlib + sha256 floor (gzip -c | sha256sum beside it), peak RSS < 256 MB',
  },
  'audit-quota': {
    run: async (args) => (await import('./audit-quota.ts')).benchAuditQuota(args),
    about:
      '200 EKS clusters in one account and region at FilterLogEvents 5 req/s, 1 MiB pages, virtual clock: highest sustainable MiB/h per cluster vs the 90 MiB/h bound, lag after 1 h at 2x, quota never exceeded',
  },
  backup: {
    run: benchBackup,
    about:
      '200 clusters, 20 ms kube API latency: one backup pass and one reconcile pass, ratio <= 1.5, one create per cluster',
  },
  coldstart: {
    run: async (args) => (await import('./coldstart.ts')).benchColdstart(args),
    about:
      'bundle size, cloud SDKs and median import time of every packaged handler beside `node -e 0` (--packaged: the `serverless package` zips); event endpoints < 3 MB, < 5x, no cloud SDK',
  },
  fanout: {
    run: async (args) => (await import('./fanout.ts')).benchFanout(args),
    about:
      '10,000 clusters through the SQS queue path, 1/4/16 worker processes, 20 ms kube latency: ratio <= 1.3 at 16, worker RSS flat (--deep N: drain N items)',
  },
};

const [name, ...args] = process.argv.slice(2);
const bench = name ? BENCHES[name] : undefined;
if (!bench) {
  console.log('Usage: npm run bench -- <name> [options]\n');
  for (const [n, b] of Object.entries(BENCHES)) console.log(`  ${n.padEnd(11)} ${b.about}`);
  process.exit(name === undefined || name === '--help' || name === '-h' ? 0 : 2);
}
process.exitCode = await bench.run(args);
