/**
 * `npm run stack -- [--clusters N] [--tick FN]... [--no-schedules] [--package DIR]`: the deployed
 * stack, locally. Starts the sandbox and a Slack sink, packages the service (or reuses the package
 * of the same sources), and runs the packaged functions as AWS calls them (see `stack.ts`): the
 * HTTP API on loopback, the schedules, and the SQS queues in moto with the workers triggered from
 * them. Each function calls AWS with its own key through an IAM check against its generated role
 * (`--iam enforce|record|off`); refusals print here. Slack messages print here. Ctrl-C (SIGINT) or SIGTERM stops every process it started.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { parse, stringify } from 'yaml';
import { intOption } from './args.ts';
import { startSandbox } from './index.ts';
import { freePort } from './net.ts';
import { EXAMPLE_CONFIG, HOME, packageService } from './package.ts';
import { startSlackSink } from './slack-sink.ts';
import { isPackageDir, startStack } from './stack.ts';

process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.SLS_TELEMETRY_DISABLED = '1';

const HELP = `Usage: npm run stack -- [--clusters N] [--tick FN]... [--no-schedules] [--package DIR]
                        [--retry-after S] [--port P] [--iam MODE] [--quiet] [--dir DIR]

Runs the packaged functions (serverless package) the way AWS calls them, against the sandbox:
queues, dead-letter queues and the state table from the template are created in moto, each SQS
event source polls its queue (BatchSize, batching window, MaximumConcurrency,
ReportBatchItemFailures), the schedules fire on their rate/cron, and the HTTP API routes listen
on 127.0.0.1. Slack messages (webhook URL from SSM in moto) print here.

  --clusters N     clusters to seed (default 24)
  --tick FN        fire one tick of FN's schedule once started (repeatable, in order)
  --no-schedules   do not run the rate/cron timers (ticks still work)
  --package DIR    a 'serverless package --package DIR' output to run (default: package now, or
                   reuse .fleetward/package/<hash> when the sources are unchanged)
  --retry-after S  a failed SQS item is received again after S seconds (default 30; AWS: the
                   queue's visibility timeout)
  --port P         HTTP API port (default: a free one)
  --iam MODE       enforce (default): refuse a call the function's generated role does not allow,
                   with AccessDenied; record: allow it but print it; off: no check  --quiet          do not print the functions' log lines
  --dir DIR        working directory (default .fleetward/stack)`;

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '24' },
    tick: { type: 'string', multiple: true, default: [] },
    'no-schedules': { type: 'boolean', default: false },
    package: { type: 'string' },
    'retry-after': { type: 'string', default: '30' },
    port: { type: 'string' },
    iam: { type: 'string', default: 'enforce' },
    quiet: { type: 'boolean', default: false },
    dir: { type: 'string', default: join('.fleetward', 'stack') },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}
const int = (name: string, value: string, min: number) => intOption('stack', name, value, min);
const clusters = int('clusters', values.clusters, 4);
const retryAfter = int('retry-after', values['retry-after'], 0);
const port = values.port === undefined ? undefined : int('port', values.port, 1);
const IAM_MODES = ['enforce', 'record', 'off'] as const;
const iam = IAM_MODES.find((m) => m === values.iam);
if (!iam) {
  console.error(`stack: --iam must be one of ${IAM_MODES.join(', ')}, got "${values.iam}"`);
  process.exit(2);
}
if (values.package && !isPackageDir(values.package)) {
  console.error(`stack: ${values.package} is not a 'serverless package' output`);
  process.exit(2);
}
const say = (line: string) => process.stderr.write(`${line}\n`);
const dir = resolve(values.dir);
const SLACK_PARAM = '/fleetward/slack/stack';

const started = Date.now();
say(
  `Starting the sandbox (${clusters} clusters) and ${values.package ? 'reading' : 'packaging'} the service...`,
);
const stops: (() => Promise<void>)[] = [];
let stopping = false;
const shutdown = async (why: string, code = 0) => {
  if (stopping) return;
  stopping = true;
  say(`${why}: stopping the stack...`);
  for (const stop of stops.reverse()) await stop().catch(() => {});
  say('Stack stopped.');
  process.exit(code);
};
process.on('SIGINT', () => void shutdown('SIGINT'));
process.on('SIGTERM', () => void shutdown('SIGTERM'));

try {
  const [packaged, sandbox, sink] = await Promise.all([
    values.package
      ? Promise.resolve({ dir: values.package, status: 0, output: '', reused: true })
      : packageService(HOME),
    startSandbox({ clusters, dir: join(dir, 'sandbox') }),
    startSlackSink({ rateLimit: false }),
  ]);
  stops.push(
    () => sandbox.stop(),
    () => sink.stop(),
  );
  if (packaged.status !== 0) throw new Error(`serverless package failed:\n${packaged.output}`);

  // The deployed config: the sandbox's, plus Slack with its webhook URL in SSM, as a deployment keeps it.
  const template = JSON.parse(readFileSync(join(packaged.dir, 'serverless-state.json'), 'utf8')) as {
    service: { provider: { region: string } };
  };
  const ssm = new SSMClient({
    endpoint: sandbox.moto.url,
    region: template.service.provider.region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });
  await ssm.send(
    new PutParameterCommand({
      Name: SLACK_PARAM,
      Type: 'SecureString',
      Value: sink.url('stack'),
      Overwrite: true,
    }),
  );
  ssm.destroy();
  const config = parse(readFileSync(sandbox.configPath, 'utf8'));
  config.slack = { webhooks: { stack: { from: 'ssm', name: SLACK_PARAM } }, routes: [{ webhook: 'stack' }] };
  // As deployed: member accounts reached with each function's own role (no credentials) through
  // the stack's AWS endpoint, whose IAM check sees every sts:AssumeRole. A package built here
  // carries the example config, whose accounts its roles may assume into: deploy only those.
  const awsPort = await freePort();
  if (config.clouds?.aws) {
    const { credentials: _sandboxProfile, ...aws } = config.clouds.aws;
    if (!values.package) {
      const packaged = (
        parse(readFileSync(EXAMPLE_CONFIG, 'utf8')) as { clouds: { aws: { accounts: { id: string }[] } } }
      ).clouds.aws.accounts.map((a) => String(a.id));
      aws.accounts = aws.accounts.filter((a: { id: string }) => packaged.includes(a.id));
    }
    config.clouds.aws = { ...aws, endpoint: `http://127.0.0.1:${awsPort}` };
  }
  const deployed = join(dir, 'fleet.yaml');
  writeFileSync(deployed, stringify(config));

  let printed = 0;
  let refusals = 0;
  // Read by onInvoke, which may run before the assignment (a schedule firing at once).
  let stack: Awaited<ReturnType<typeof startStack>> | undefined;
  stack = await startStack({
    packageDir: packaged.dir,
    awsEndpoint: sandbox.moto.url,
    awsPort,
    config: deployed,
    schedules: !values['no-schedules'],
    retryVisibilitySeconds: retryAfter,
    iam,
    ...(port !== undefined && { httpPort: port }),
    ...(!values.quiet && { onLog: (fn: string, line: string) => say(`[${fn}] ${line}`) }),
    onInvoke: (i) => {
      for (const c of stack?.iam.denied().slice(refusals) ?? []) {
        say(
          `iam: ${iam === 'enforce' ? 'refused' : 'would refuse'} ${c.function} ${c.action} ${c.resources.join(' ')}`,
        );
      }
      refusals = stack?.iam.denied().length ?? 0;
      const items = i.received ? ` ${i.received.length} items, ${i.failed?.length ?? 0} failed` : '';
      const error = i.error ? ` ${i.error.errorType}: ${i.error.errorMessage}` : '';
      say(`invoke ${i.function} (${i.trigger}) ${i.ok ? 'ok' : 'error'} in ${i.ms} ms${items}${error}`);
      for (const m of sink.messages('stack').slice(printed)) {
        say(`slack: ${m.body.text ?? JSON.stringify(m.body).slice(0, 200)}`);
      }
      printed = sink.messages('stack').length;
    },
  });
  const running = stack;
  stops.push(() => running.stop());

  console.log(`FLEETWARD_STACK_URL=${stack.url}`);
  say(
    `Stack ready in ${((Date.now() - started) / 1000).toFixed(1)} s (package ${packaged.dir}${packaged.reused ? ', reused' : ''}).`,
  );
  say(
    `  moto ${sandbox.moto.url}; functions' AWS endpoint (IAM ${iam}) ${stack.awsEndpoint}; HTTP API ${stack.url}`,
  );
  say(`  functions: ${stack.functions.join(', ')}`);
  say(`  queues: ${stack.queues.map((q) => q.name).join(', ')}`);
  for (const s of stack.schedules) {
    say(
      `  schedule ${s.function} ${s.expression}${s.enabled && !values['no-schedules'] ? '' : ' (not running)'}`,
    );
  }
  for (const fn of values.tick) {
    say(`tick ${fn}`);
    await stack.tick(fn);
  }
  if (values.tick.length > 0) {
    say(
      `iam (${iam}): ${stack.iam.calls.length} calls checked, ${stack.iam.denied().length} not allowed by their role`,
    );
  }
  say('Press Ctrl-C to stop.');
  setInterval(() => {}, 1 << 30);
} catch (error) {
  say(`stack: ${(error as Error).message}`);
  await shutdown('error', 1);
}
