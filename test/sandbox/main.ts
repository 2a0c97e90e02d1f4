/**
 * `npm run sandbox -- --clusters N [--latency MS] [--seed S]`: starts the local clouds in
 * the foreground. The first stdout line is `FLEETWARD_CONFIG=<path>`; Ctrl-C (SIGINT) or
 * SIGTERM stops every emulator it started.
 */
import { parseArgs } from 'node:util';
import { intOption } from './args.ts';
import { startSandbox } from './index.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.METADATA_SERVER_DETECTION = 'none';

const HELP = `Usage: npm run sandbox -- [--clusters N] [--latency MS] [--seed S] [--dir DIR]

Starts moto (behind a fault/latency proxy), the GKE gRPC fake, the HTTPS ARM fake and
fake Kubernetes API servers on 127.0.0.1, seeds N clusters over EU, India, South Africa
and US regions, and writes a fleet.yaml pointing at them. Prints FLEETWARD_CONFIG=<path>
first; stops everything on Ctrl-C.

  --clusters N   clusters to seed (default 24; 60% AWS, 25% GCP, rest Azure, 2 kubeconfig when N >= 20)
  --latency MS   latency injected into every API call (default 0)
  --seed S       generator seed (default 42)
  --dir DIR      working directory (default .fleetward/sandbox)`;

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '24' },
    latency: { type: 'string', default: '0' },
    seed: { type: 'string', default: '42' },
    dir: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const int = (name: string, value: string, min: number) => intOption('sandbox', name, value, min);
const clusters = int('clusters', values.clusters, 4);
const latencyMs = int('latency', values.latency, 0);
const seed = int('seed', values.seed, 0);

const started = Date.now();
process.stderr.write(`Starting sandbox with ${clusters} clusters...\n`);
const sandbox = await startSandbox({ clusters, latencyMs, seed, ...(values.dir ? { dir: values.dir } : {}) });
console.log(`FLEETWARD_CONFIG=${sandbox.configPath}`);
const counts = sandbox.fleet.reduce<Record<string, number>>((acc, c) => {
  acc[c.cloud] = (acc[c.cloud] ?? 0) + 1;
  return acc;
}, {});
process.stderr.write(
  `Sandbox ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')}. moto at ${sandbox.moto.url} (pid ${sandbox.moto.pid}). Press Ctrl-C to stop.\n`,
);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`${signal}: stopping sandbox...\n`);
  await sandbox.stop();
  process.stderr.write('Sandbox stopped.\n');
  process.exit(0);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));
// Keep the event loop alive until a signal arrives.
setInterval(() => {}, 1 << 30);
