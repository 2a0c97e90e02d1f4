#!/usr/bin/env node
/**
 * The Fleetward CLI: the same jobs the Lambda functions run, run locally.
 * Exit codes: 0 done, 1 the run completed with failures (or crashed), 2 bad usage or bad config.
 */
import { readFileSync } from 'node:fs';
import { configJsonSchema, configPath, DEFAULT_CONFIG_FILE, loadConfig } from '../shared/config/load.ts';
import type { FleetConfig } from '../shared/config/schema.ts';
import { type BackupOutcome, run as runBackups } from '../shared/jobs/backup.ts';
import { run as runDiscover } from '../shared/jobs/discover.ts';
import { renderDiscoverTable } from '../shared/jobs/discover-report.ts';
import { couldNotStart, type DrillStepResult, step as drillStep } from '../shared/jobs/drill.ts';
import { run as reconcileBackups } from '../shared/jobs/reconcile-backups.ts';
import {
  backupCounts,
  backupView,
  drillCounts,
  drillView,
  renderBackupView,
  renderDrillView,
} from '../shared/jobs/velero-report.ts';
import type { Log } from '../shared/ports.ts';
import { clusterJobDeps } from '../shared/runtime/deps/cluster-jobs.ts';
import { discoverDeps } from '../shared/runtime/deps/discover.ts';
import { FleetwardError, UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { didYouMean } from '../shared/runtime/suggest.ts';
import { wrapHanging } from '../shared/runtime/table.ts';
import { LOG_OPTIONS, parseCommandArgs, subcommand, unknownChoice, WIDE_OPTION } from './args.ts';
import { reportError, runReported } from './errors.ts';
import { ensureInventory } from './inventory.ts';
import { cmdNotify, NOTIFY_HELP, notifyAfter } from './notify.ts';
import { EXIT, progress, summaryLine } from './output.ts';

const HELP = `fleetward — Kubernetes fleet automation across AWS, GCP and Azure, inside each jurisdiction

Usage:
  fleetward <command> [options]

Commands:
  discover                 find every cluster, place it in a jurisdiction, diff and save the inventory
  backup run|status        request this window's Velero Backup per cluster; show phases and RPO
  drill run|status         restore the newest backup into scratch namespaces; show RTO and results
  tags plan|apply          derive and default cost tags per cluster; report missing or invalid ones
  budgets plan|apply       make the clouds' budgets match fleet.yaml; report accounts without one
  audit collect|verify     archive control-plane audit logs write-once in-jurisdiction; verify the chains
  audit plan|apply         export mode: keep each cloud's own audit export into the evidence store as desired
  snapshot                 evaluate compliance controls; write and publish a snapshot per jurisdiction
  onboard <target>         print the roles, RBAC and buckets Fleetward needs (aws|gcp|azure|kubernetes|evidence)
  doctor                   check each scope's access: credentials, clusters, audit logs, evidence, Velero, Slack
  notify test              send a test message to each Slack route (or --route NAME); print each answer
  config validate [FILE]   check a fleet.yaml; names the path of every bad field (exit 2 when invalid)
  config schema            print the JSON Schema of fleet.yaml

Common options:
  --config FILE            fleet config (default: $FLEETWARD_CONFIG, else ./${DEFAULT_CONFIG_FILE})
  --log-level LEVEL        debug | info | warn | error | silent (default: warn); logs go to stderr
  --log-format FORMAT      text (one readable line per record, the default) | json (one JSON object
                           per line, for log pipelines; also $FLEETWARD_LOG_FORMAT)
  -h, --help               show help for a command
  -V, --version            print the version

Output: tables and plans on stdout fit 120 columns (--wide shows optional columns) and name each
cluster by the id --cluster takes; each command ends with a 'Summary:' line that counts what it
did and says what its exit code means. Progress and logs go to stderr.
Exit codes: 0 done, 1 completed with failures, 2 bad usage or invalid config.
Run 'fleetward <command> --help' for a command's options.`;

/** The help of the commands defined in this file (the others export their own). */
const COMMAND_HELP: Record<string, string> = {
  notify: NOTIFY_HELP,
  discover: `Usage: fleetward discover [--config FILE] [--json] [--wide] [--notify] [--log-level LEVEL] [--log-format FORMAT]

Lists the clusters of every configured AWS account and region, GCP project, Azure
subscription and kubeconfig context; places each in its jurisdiction (or 'unassigned');
compares with the saved inventory and saves the new one.

Options:
  --json      print {"clusters": [...], "diff": {"added","removed","changed"}, "failures": [...]}
              instead of the table grouped by jurisdiction
  --notify    send the Slack digest of added/removed clusters and failing scopes (as the function does)
  --wide      add the full Kubernetes version, the country and the creation date
Exit: 0 when every scope answered, 1 when some account, region, project, subscription
or context failed (its clusters are kept as last seen), 2 for an invalid config.`,
  backup: `Usage:
  fleetward backup run [--cluster ID] [--dry-run] [--config FILE] [--json]
  fleetward backup status [--cluster ID] [--config FILE] [--json] [--wide]

'run' preflights every cluster of the saved inventory (Velero installed and available, every
BackupStorageLocation Available and inside the cluster's jurisdiction) and creates one
velero.io/v1 Backup named after the current schedule window of the cluster's jurisdiction.
Running it again in the same window finds the same Backup and creates nothing. --dry-run
asks the API server to validate the Backup without storing it.
'status' reads the phase of every Fleetward Backup, records terminal ones, and prints per
cluster the last backup, the RPO (now - completion of the newest Completed backup) against
the jurisdiction's target, and findings (e.g. Velero missing); --wide adds the jurisdiction,
the backup's name and the RPO target.
Run 'fleetward discover' first: both act on the saved inventory.
--notify sends the job's Slack digest of new findings after the run, as the scheduled function does.
Exit: 0 done, 1 some cluster failed or has findings, 2 bad usage or config.`,
  drill: `Usage:
  fleetward drill run [--cluster ID] [--no-wait] [--config FILE] [--json] [--wide]
  fleetward drill status [--cluster ID] [--config FILE] [--json] [--wide]

'run' starts a restore drill on every cluster (or one): the newest Completed backup is
restored into labelled scratch namespaces (fw-drill-...) on the same cluster or on the
jurisdiction's drill cluster, then verified (item counts, Deployments and StatefulSets
ready) and the scratch namespaces deleted. It waits, polling, until every drill is done
(--no-wait returns after starting them; the schedule advances them later).
'status' advances active drills one step and prints per cluster the RTO in seconds
(Restore created -> workloads ready), pass/fail against the target, and notes (why a
drill failed or could not run); --wide adds the phase, the backup restored and the scratch
namespaces left.
--notify sends the job's Slack digest of new findings after the run, as the scheduled function does.
Exit: 0 every drill passed, 1 some drill failed or could not run, 2 bad usage or config.`,
  config: `Usage:
  fleetward config validate [FILE]   validate FILE (default: --config, $FLEETWARD_CONFIG or ./${DEFAULT_CONFIG_FILE})
  fleetward config schema            print the JSON Schema (draft 2020-12) for editors and CI

'validate' prints every bad field as '<path>: <reason>' and exits 2 when the file is invalid.`,
};

function configFile(explicit: string | undefined): string {
  return configPath(explicit);
}

async function cmdConfig(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('config', {
    args,
    allowPositionals: true,
    options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [sub, file, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(COMMAND_HELP.config);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (sub === 'schema') {
    console.log(JSON.stringify(configJsonSchema(), null, 2));
    return EXIT.ok;
  }
  if (sub === 'validate') {
    const path = file ?? configFile(values.config);
    const config = await loadConfig(path);
    console.log(`${path}: valid (${describeConfig(config)})`);
    return EXIT.ok;
  }
  throw unknownChoice('config', sub, ['validate', 'schema']);
}

function describeConfig(config: FleetConfig): string {
  const { aws, gcp, azure, kubeconfig } = config.clouds;
  const parts = [
    aws && `${aws.accounts.length} AWS account(s)`,
    gcp && `${gcp.projects.length} GCP project(s)`,
    azure && `${azure.subscriptions.length} Azure subscription(s)`,
    kubeconfig && `${kubeconfig.reduce((n, k) => n + k.contexts.length, 0)} kubeconfig context(s)`,
    `${Object.keys(config.jurisdictions).length} jurisdiction(s)`,
  ];
  return parts.filter(Boolean).join(', ');
}

async function cmdDiscover(args: string[]): Promise<number> {
  const { values } = parseCommandArgs('discover', {
    args,
    options: {
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
      notify: { type: 'boolean' },
      ...WIDE_OPTION,
      ...LOG_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(COMMAND_HELP.discover);
    return EXIT.ok;
  }
  const logger = cliLogger(values);
  const config = await loadConfig(configFile(values.config));
  const deps = await discoverDeps(config, logger);
  const clouds = deps.discoveries.map((d) => d.cloud).join(', ');
  if (!values.json) process.stderr.write(`Discovering clusters in ${clouds || 'no cloud'}...\n`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort(new FleetwardError('interrupted')));
  const bar = progress('Discovering');
  const waiting = new Set(deps.discoveries.map((d) => d.cloud));
  try {
    const result = await runDiscover(deps, {
      signal: controller.signal,
      onProgress: (done, total, answered) => {
        if (answered) waiting.delete(answered.cloud);
        bar.update(
          done,
          total,
          `clouds${waiting.size > 0 ? `, waiting for ${[...waiting].join(', ')}` : ''}`,
        );
      },
    });
    bar.done();
    const notified = await notifyAfter(
      values.notify,
      { config, store: deps.store, logger },
      { discovery: result },
    );
    const code = result.failures.length > 0 || !notified ? EXIT.failed : EXIT.ok;
    if (values.json) {
      console.log(
        JSON.stringify({ clusters: result.clusters, diff: result.diff, failures: result.failures }, null, 2),
      );
    } else {
      console.log(renderDiscoverTable(result, config, { wide: values.wide }));
      const { added, removed, changed } = result.diff;
      const counts = {
        found: result.clusters.length,
        added: added.length,
        removed: removed.length,
        changed: changed.length,
        'scope failures': result.failures.length,
      };
      console.log(summaryLine(counts, code));
    }
    return code;
  } finally {
    bar.done();
    await deps.store.close();
  }
}

/**
 * Cluster jobs act on the saved inventory; on a fresh state store there is none yet, so the
 * CLI discovers first (the deployed functions rely on the discovery schedule instead).
 */
async function clusterJobDepsWithInventory(config: FleetConfig, logger: Log) {
  const deps = await clusterJobDeps(config, logger);
  await ensureInventory(config, deps.store, logger);
  return deps;
}

/** Options every cluster job command takes. */
const CLUSTER_JOB_OPTIONS = {
  config: { type: 'string' },
  cluster: { type: 'string' },
  json: { type: 'boolean', default: false },
  notify: { type: 'boolean' },
  ...WIDE_OPTION,
  ...LOG_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

/** One line per cluster of a backup run, wrapped to 120 columns. */
function backupLines(o: BackupOutcome): string[] {
  const detail =
    o.status === 'skipped'
      ? o.findings.map((f) => f.message).join('; ')
      : o.status === 'failed'
        ? o.error.message
        : `${o.backup} -> ${o.location.name} (${o.location.cloud} ${o.location.region})`;
  return wrapHanging(`${o.status.padEnd(8)} ${o.clusterId}: `, detail, 9);
}

async function cmdBackup(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('backup', {
    args,
    allowPositionals: true,
    options: { ...CLUSTER_JOB_OPTIONS, 'dry-run': { type: 'boolean' } },
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(COMMAND_HELP.backup);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  subcommand('backup', sub, ['run', 'status']);
  const logger = cliLogger(values);
  const config = await loadConfig(configFile(values.config));
  const deps = await clusterJobDepsWithInventory(config, logger);
  const clusterId = values.cluster;
  const bar = progress('Backing up');
  try {
    if (sub === 'run') {
      const result = await runBackups(deps, {
        ...(clusterId ? { clusterId } : {}),
        dryRun: values['dry-run'] === true,
        onProgress: (done, total) => bar.update(done, total, 'clusters'),
      });
      bar.done();
      const notified = await notifyAfter(values.notify, deps, { job: 'backup', runId: result.runId });
      const n = (status: BackupOutcome['status']) =>
        result.outcomes.filter((o) => o.status === status).length;
      const code = n('failed') + n('skipped') > 0 || !notified ? EXIT.failed : EXIT.ok;
      if (values.json) console.log(JSON.stringify(result, null, 2));
      else {
        for (const o of result.outcomes) console.log(backupLines(o).join('\n'));
        const counts = {
          created: n('created'),
          exists: n('exists'),
          planned: n('planned'),
          skipped: n('skipped'),
          failed: n('failed'),
        };
        console.log(summaryLine(counts, code));
      }
      return code;
    }
    await reconcileBackups(deps, clusterId ? { clusterId } : {});
    const notified = await notifyAfter(values.notify, deps, { job: 'reconcile-backups' });
    const view = await backupView(deps.store, clusterId);
    const code = !notified || view.some((v) => v.findings.length > 0) ? EXIT.failed : EXIT.ok;
    if (values.json) console.log(JSON.stringify({ clusters: view }, null, 2));
    else
      console.log(
        `${renderBackupView(view, { wide: values.wide })}\n${summaryLine(backupCounts(view), code)}`,
      );
    return code;
  } finally {
    bar.done();
    await deps.store.close();
  }
}

/** Where each cluster's drill stands while `drill run` waits, for its progress line. */
function drillTally(results: Iterable<DrillStepResult>) {
  let running = 0;
  let unstartable = 0;
  let total = 0;
  for (const r of results) {
    total++;
    if (r.findings.some(couldNotStart)) unstartable++;
    else if (r.drill && r.drill.phase !== 'done') running++;
  }
  return { running, unstartable, finished: total - running };
}

async function cmdDrill(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('drill', {
    args,
    allowPositionals: true,
    options: { ...CLUSTER_JOB_OPTIONS, 'no-wait': { type: 'boolean' } },
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(COMMAND_HELP.drill);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  subcommand('drill', sub, ['run', 'status']);
  // Started before the deps load (kube client, tokens): a slow start shows as progress too.
  const bar = progress('Drills');
  const logger = cliLogger(values);
  const config = await loadConfig(configFile(values.config));
  const deps = await clusterJobDepsWithInventory(config, logger);
  const clusterId = values.cluster;
  const scope = clusterId ? { clusterId } : {};
  // The latest step result of each cluster: every step reports each cluster as it finishes.
  const latest = new Map<string, DrillStepResult>();
  const onProgress = (_done: number, total: number, r?: DrillStepResult) => {
    if (r) {
      // A later step only advances drills: a cluster that could not start one keeps saying so.
      const before = latest.get(r.clusterId);
      const keep = !r.started && r.findings.length === 0 && before?.findings.some(couldNotStart);
      latest.set(r.clusterId, keep ? { ...r, findings: before!.findings } : r);
    }
    const t = drillTally(latest.values());
    const notes = [
      t.running > 0 ? `${t.running} running` : '',
      t.unstartable > 0 ? `${t.unstartable} could not start` : '',
    ].filter(Boolean);
    bar.update(Math.min(t.finished, total), total, `done${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`);
  };
  try {
    if (sub === 'run') {
      let results = await drillStep(deps, { ...scope, start: 'force', onProgress });
      const started = results.filter((r) => r.started).length;
      const waiting = !values['no-wait'] && results.some((r) => r.drill && r.drill.phase !== 'done');
      bar.done();
      process.stderr.write(
        `Started ${started} drill(s)${waiting ? "; waiting for them to finish ('fleetward drill status' shows them later)" : ''}.\n`,
      );
      if (!values['no-wait']) {
        // The CLI may wait; functions never do (the schedule advances their drills).
        const limit =
          Math.max(...Object.values(config.jurisdictions).map((j) => j.drill.rtoMinutes)) * 60_000 + 60_000;
        const deadline = Date.now() + limit;
        while (results.some((r) => r.drill && r.drill.phase !== 'done') && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 1000));
          results = await drillStep(deps, { ...scope, start: 'never', onProgress });
        }
      }
    } else {
      await drillStep(deps, { ...scope, start: 'never' });
    }
    bar.done();
    const notified = await notifyAfter(values.notify, deps, { job: 'restore-drill' });
    const view = await drillView(deps.store, clusterId);
    const code =
      !notified || view.some((v) => v.findings.length > 0 || v.drill?.result === 'fail')
        ? EXIT.failed
        : EXIT.ok;
    if (values.json) console.log(JSON.stringify({ clusters: view }, null, 2));
    else
      console.log(`${renderDrillView(view, { wide: values.wide })}\n${summaryLine(drillCounts(view), code)}`);
    return code;
  } finally {
    bar.done();
    await deps.store.close();
  }
}

/** A command: what it runs and its help. */
interface Command {
  run: (args: string[]) => Promise<number>;
  help: string;
}

const here = (name: string, run: Command['run']) => async (): Promise<Command> => ({
  run,
  help: COMMAND_HELP[name] ?? HELP,
});

/**
 * Every command, loaded when it is run: onboarding and doctor load every cloud adapter's
 * permission table and most SDKs, which `--version` or `backup` should not wait for.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  discover: here('discover', cmdDiscover),
  backup: here('backup', cmdBackup),
  drill: here('drill', cmdDrill),
  config: here('config', cmdConfig),
  notify: here('notify', cmdNotify),
  budgets: async () => import('./budgets.ts').then((m) => ({ run: m.cmdBudgets, help: m.BUDGETS_HELP })),
  audit: async () => import('./audit.ts').then((m) => ({ run: m.cmdAudit, help: m.AUDIT_HELP })),
  tags: async () => import('./tags.ts').then((m) => ({ run: m.cmdTags, help: m.TAGS_HELP })),
  snapshot: async () => import('./snapshot.ts').then((m) => ({ run: m.cmdSnapshot, help: m.SNAPSHOT_HELP })),
  doctor: async () => import('./doctor.ts').then((m) => ({ run: m.cmdDoctor, help: m.DOCTOR_HELP })),
  onboard: async () => import('./onboard.ts').then((m) => ({ run: m.cmdOnboard, help: m.ONBOARD_HELP })),
};

/** This package's version, from its package.json. */
function version(): string {
  return (
    JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  ).version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-V' || command === 'version') {
    console.log(`fleetward ${version()}`);
    return EXIT.ok;
  }
  if (!command || command === '-h' || command === '--help' || command === 'help') {
    const topic = command === 'help' ? rest[0] : undefined;
    const load = topic && Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
    console.log(load ? (await load()).help : HELP);
    return command ? EXIT.ok : EXIT.usage;
  }
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load) return runReported(command, async (args) => (await load()).run(args), rest);
  // A mistyped command, or an option before any command.
  return reportError(
    command.startsWith('-')
      ? new UsageError(`unknown option "${command}"${didYouMean(command, ['--help', '--version'])}`)
      : unknownChoice('', command, Object.keys(COMMANDS)),
  );
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
