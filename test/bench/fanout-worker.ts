/**
 * One fan-out worker process: one Lambda instance of the backup worker function. It opens its
 * deps once, then runs receive -> `runBatch(backupWork)` -> acknowledge rounds until the parent
 * says stop, and reports its counts, CPU time and peak RSS (`process.resourceUsage().maxRSS`)
 * over IPC. Started by `test/bench/fanout.ts` with `fork`; its options come in `FANOUT_WORKER`.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { fanoutConfig, type LoopCounts, workerDeps, workerRound } from './fanout-fleet.ts';

interface WorkerOptions {
  sqsUrl: string;
  queueUrl: string;
  kube: { url: string; ca: string };
  statePath: string;
  batchSize: number;
}

export interface WorkerReport {
  type: 'report';
  counts: LoopCounts;
  cpuMs: number;
  maxRssKb: number;
  rssKb: number;
}

const options = JSON.parse(process.env.FANOUT_WORKER ?? '{}') as WorkerOptions;
const sqs = new SQSClient({
  endpoint: options.sqsUrl,
  region: 'us-east-1',
  credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  maxAttempts: 5,
});
/**
 * Each worker works on its own copy of the seeded state (inventory and all): a deployment's
 * DynamoDB table takes concurrent writers without a global lock, one SQLite file shared by 16
 * processes does not (its busy wait would block a worker's whole event loop and measure SQLite).
 */
const statePath = `${options.statePath}-${process.pid}`;
copyFileSync(options.statePath, statePath);
const deps = workerDeps({ config: fanoutConfig(), statePath, kube: options.kube });
const counts: LoopCounts = { batches: 0, succeeded: 0, failed: 0 };
let running = false;
/** CPU time spent before `go` (loading modules, opening deps) is not the pass's. */
let baseCpuMs = 0;
let stopping = false;

const report = (): WorkerReport => {
  const usage = process.resourceUsage();
  return {
    type: 'report',
    counts,
    cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000 - baseCpuMs,
    maxRssKb: usage.maxRSS,
    rssKb: Math.round(process.memoryUsage.rss() / 1024),
  };
};

async function loop() {
  running = true;
  while (!stopping) {
    await workerRound(sqs, options.queueUrl, deps, counts, { waitSeconds: 1, batchSize: options.batchSize });
  }
  running = false;
}

process.on('message', async (message: { type: string }) => {
  if (message.type === 'go' && !running) {
    const usage = process.resourceUsage();
    baseCpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
    void loop();
  }
  if (message.type === 'sample') process.send?.(report());
  if (message.type === 'stop') {
    stopping = true;
    while (running) await new Promise((r) => setTimeout(r, 10));
    process.send?.(report());
    sqs.destroy();
    await deps.store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${statePath}${suffix}`, { force: true });
    process.disconnect();
  }
});
process.send?.({ type: 'ready' });
