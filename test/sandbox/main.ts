/**
 * `npm run sandbox -- --clusters N [--latency MS] [--seed S]`: starts the local clouds and the
 * Slack webhook sink in the foreground. The first stdout line is `FLEETWARD_CONFIG=<path>`,
 * then one `NAME=URL` line per Slack webhook variable; `<dir>/sandbox.env` exports them all.
 * Messages the sink receives print on stderr. Ctrl-C (SIGINT) or SIGTERM stops every
 * emulator it started.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { intOption } from './args.ts';
import { startSandbox } from './index.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.METADATA_SERVER_DETECTION = 'none';

const HELP = `Usage: npm run sandbox -- [--clusters N] [--latency MS] [--seed S] [--dir DIR]

Starts moto (behind a fault/latency proxy), the GKE gRPC fake, the HTTPS ARM fake, fake
Kubernetes API servers and a Slack webhook sink on 127.0.0.1, seeds N clusters over EU,
India, South Africa and US regions, and writes a fleet.yaml pointing at them. Prints
FLEETWARD_CONFIG=<path> first, then the Slack webhook variables; DIR/sandbox.env exports
them all (source it in the shell you run fleetward in). Messages sent to Slack print here.
Stops everything on Ctrl-C.

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
const sandbox = await startSandbox({
  clusters,
  latencyMs,
  seed,
  slack: true,
  ...(values.dir ? { dir: values.dir } : {}),
});
console.log(`FLEETWARD_CONFIG=${sandbox.configPath}`);
const slackEnv = sandbox.slack?.env ?? {};
for (const [name, url] of Object.entries(slackEnv)) console.log(`${name}=${url}`);
const envFile = join(sandbox.dir, 'sandbox.env');
writeFileSync(
  envFile,
  Object.entries({ FLEETWARD_CONFIG: sandbox.configPath, ...slackEnv })
    .map(([name, value]) => `export ${name}='${value}'\n`)
    .join(''),
);
const counts = sandbox.fleet.reduce<Record<string, number>>((acc, c) => {
  acc[c.cloud] = (acc[c.cloud] ?? 0) + 1;
  return acc;
}, {});
process.stderr.write(
  `Sandbox ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${Object.entries(counts)
    .map(([k, v]) => `${v} ${k}`)
    .join(', ')}. moto at ${sandbox.moto.url} (pid ${sandbox.moto.pid}). Press Ctrl-C to stop.\n`,
);
const sink = sandbox.slack?.sink;
if (sink) {
  process.stderr.write(
    [
      `Slack webhook sink at ${new URL(sink.messagesUrl).origin} (webhooks: ${Object.keys(sandbox.slack?.webhooks ?? {}).join(', ')}).`,
      '  The fleet.yaml reads the webhook URLs from the environment. In the shell you run fleetward in:',
      `    source ${envFile}`,
      '    npx fleetward notify test            # one test message per Slack route',
      '    npx fleetward backup run --notify    # a job run that sends its digest',
      `  Messages received print below; all of them as JSON: curl -s ${sink.messagesUrl}`,
      '',
    ].join('\n'),
  );
  sink.onMessage((webhook, m) => {
    const text = m.body.text ?? `${m.body.blocks?.length ?? 0} block(s)`;
    process.stderr.write(`slack ${webhook}: ${text}\n`);
  });
}

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
