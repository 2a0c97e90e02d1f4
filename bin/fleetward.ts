#!/usr/bin/env node
/**
 * The Fleetward CLI: the same jobs the Lambda functions run, run locally.
 * Exit codes: 0 done, 1 the run completed with failures (or crashed), 2 bad usage or bad config.
 */
import { readFileSync } from 'node:fs';
import { configJsonSchema, configPath, DEFAULT_CONFIG_FILE, loadConfig } from '../shared/config/load.ts';
import type { FleetConfig } from '../shared/config/schema.ts';
import { run as runBackups } from '../shared/jobs/backup.ts';
import { run as runDiscover } from '../shared/jobs/discover.ts';
import { renderDiscoverTable } from '../shared/jobs/discover-report.ts';
import { step as drillStep } from '../shared/jobs/drill.ts';
import { run as reconcileBackups } from '../shared/jobs/reconcile-backups.ts';
import { backupView, drillView, renderBackupView, renderDrillView } from '../shared/jobs/velero-report.ts';
import { clusterJobDeps } from '../shared/runtime/deps/cluster-jobs.ts';
import { discoverDeps } from '../shared/runtime/deps/discover.ts';
import { FleetwardError, UsageError } from '../shared/runtime/errors.ts';
import { parseLogLevel, stderrLogger } from '../shared/runtime/logger.ts';
import { didYouMean } from '../shared/runtime/suggest.ts';
import { parseCommandArgs, subcommand, unknownChoice } from './args.ts';
import { AUDIT_HELP, cmdAudit } from './audit.ts';
import { BUDGETS_HELP, cmdBudgets } from './budgets.ts';
import { cmdDoctor, DOCTOR_HELP } from './doctor.ts';
import { reportError, runReported } from './errors.ts';
import { ensureInventory } from './inventory.ts';
import { cmdNotify, NOTIFY_HELP, notifyAfter, withNotifyExit } from './notify.ts';
import { cmdOnboard, ONBOARD_HELP } from './onboard.ts';
import { EXIT } from './output.ts';
import { cmdSnapshot, SNAPSHOT_HELP } from './snapshot.ts';
import { cmdTags, TAGS_HELP } from './tags.ts';

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
  snapshot                 evaluate compliance controls; write and publish a snapshot per jurisdiction
  onboard <target>         print the roles, RBAC and evidence buckets Fleetward needs (aws|gcp|azure|kubernetes|evidence)
  doctor                   check every scope's access (credentials, clusters, audit logs, evidence, Velero, Slack); name what to grant
  notify test              send a test message to each Slack route (or --route NAME); print each answer
  config validate [FILE]   check a fleet.yaml; names the path of every bad field (exit 2 when invalid)
  config schema            print the JSON Schema of fleet.yaml

Common options:
  --config FILE            fleet config (default: $FLEETWARD_CONFIG, else ./${DEFAULT_CONFIG_FILE})
  --log-level LEVEL        debug | info | warn | error | silent (default: warn); logs go to stderr
  -h, --help               show help for a command
  -V, --version            print the version

Exit codes: 0 done, 1 completed with failures, 2 bad usage or invalid config.
Run 'fleetward <command> --help' for a command's options.`;

const COMMAND_HELP: Record<string, string> = {
  budgets: BUDGETS_HELP,
  audit: AUDIT_HELP,
  tags: TAGS_HELP,
  snapshot: SNAPSHOT_HELP,
  onboard: ONBOARD_HELP,
  doctor: DOCTOR_HELP,
  notify: NOTIFY_HELP,
  discover: `Usage: fleetward discover [--config FILE] [--json] [--log-level LEVEL]

Lists the clusters of every configured AWS account and region, GCP project, Azure
subscription and kubeconfig context; places each in its jurisdiction (or 'unassigned');
compares with the saved inventory and saves the new one.

Options:
  --json      print {"clusters": [...], "diff": {"added","removed","changed"}, "failures": [...]}
              instead of the table grouped by jurisdiction
  --notify    send the Slack digest of added/removed clusters and failing scopes (as the function does)
Exit: 0 when every scope answered, 1 when some account, region, project, subscription
or context failed (its clusters are kept as last seen), 2 for an invalid config.`,
  backup: `Usage:
  fleetward backup run [--cluster ID] [--dry-run] [--config FILE] [--json]
  fleetward backup status [--cluster ID] [--config FILE] [--json]

'run' preflights every cluster of the saved inventory (Velero installed and available, every
BackupStorageLocation Available and inside the cluster's jurisdiction) and creates one
velero.io/v1 Backup named after the current schedule window of the cluster's jurisdiction.
Running it again in the same window finds the same Backup and creates nothing. --dry-run
asks the API server to validate the Backup without storing it.
'status' reads the phase of every Fleetward Backup, records terminal ones, and prints per
cluster the last backup, the RPO (now - completion of the newest Completed backup) against
the jurisdiction's target, and findings (e.g. Velero missing).
Run 'fleetward discover' first: both act on the saved inventory.
--notify sends the job's Slack digest of new findings after the run, as the scheduled function does.
Exit: 0 done, 1 some cluster failed or has findings, 2 bad usage or config.`,
  drill: `Usage:
  fleetward drill run [--cluster ID] [--no-wait] [--config FILE] [--json]
  fleetward drill status [--cluster ID] [--config FILE] [--json]

'run' starts a restore drill on every cluster (or one): the newest Completed backup is
restored into labelled scratch namespaces (fw-drill-...) on the same cluster or on the
jurisdiction's drill cluster, then verified (item counts, Deployments and StatefulSets
ready) and the scratch namespaces deleted. It waits, polling, until every drill is done
(--no-wait returns after starting them; the schedule advances them later).
'status' advances active drills one step and prints per cluster the RTO in seconds
(Restore created -> workloads ready), pass/fail against the target, and scratch
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
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(COMMAND_HELP.discover);
    return EXIT.ok;
  }
  const logger = stderrLogger(parseLogLevel(values['log-level']));
  const config = await loadConfig(configFile(values.config));
  const deps = await discoverDeps(config, logger);
  const clouds = deps.discoveries.map((d) => d.cloud).join(', ');
  if (!values.json) process.stderr.write(`Discovering clusters in ${clouds || 'no cloud'}...\n`);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort(new FleetwardError('interrupted')));
  try {
    const result = await runDiscover(deps, { signal: controller.signal });
    await notifyAfter(values.notify, { config, store: deps.store, logger }, { discovery: result });
    if (values.json) {
      console.log(
        JSON.stringify({ clusters: result.clusters, diff: result.diff, failures: result.failures }, null, 2),
      );
    } else {
      console.log(renderDiscoverTable(result, config));
    }
    return result.failures.length > 0 ? EXIT.failed : EXIT.ok;
  } finally {
    await deps.store.close();
  }
}

/**
 * Cluster jobs act on the saved inventory; on a fresh state store there is none yet, so the
 * CLI discovers first (the deployed functions rely on the discovery schedule instead).
 */
async function clusterJobDepsWithInventory(config: FleetConfig, logger: ReturnType<typeof stderrLogger>) {
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
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

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
  const config = await loadConfig(configFile(values.config));
  const deps = await clusterJobDepsWithInventory(config, stderrLogger(parseLogLevel(values['log-level'])));
  const clusterId = values.cluster;
  try {
    if (sub === 'run') {
      const result = await runBackups(deps, {
        ...(clusterId ? { clusterId } : {}),
        dryRun: values['dry-run'] === true,
      });
      await notifyAfter(values.notify, deps, { job: 'backup', runId: result.runId });
      if (values.json) console.log(JSON.stringify(result, null, 2));
      else {
        for (const o of result.outcomes) {
          const detail =
            o.status === 'skipped'
              ? o.findings.map((f) => f.message).join('; ')
              : o.status === 'failed'
                ? o.error.message
                : `${o.backup} -> ${o.location.name} (${o.location.cloud} ${o.location.region})`;
          console.log(`${o.status.padEnd(8)} ${o.clusterId}: ${detail}`);
        }
      }
      return result.outcomes.some((o) => o.status === 'failed' || o.status === 'skipped')
        ? EXIT.failed
        : EXIT.ok;
    }
    await reconcileBackups(deps, clusterId ? { clusterId } : {});
    await notifyAfter(values.notify, deps, { job: 'reconcile-backups' });
    const view = await backupView(deps.store, clusterId);
    console.log(values.json ? JSON.stringify({ clusters: view }, null, 2) : renderBackupView(view));
    return view.some((v) => v.findings.length > 0) ? EXIT.failed : EXIT.ok;
  } finally {
    await deps.store.close();
  }
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
  const config = await loadConfig(configFile(values.config));
  const deps = await clusterJobDepsWithInventory(config, stderrLogger(parseLogLevel(values['log-level'])));
  const clusterId = values.cluster;
  const scope = clusterId ? { clusterId } : {};
  try {
    if (sub === 'run') {
      let results = await drillStep(deps, { ...scope, start: 'force' });
      const started = results.filter((r) => r.started).length;
      process.stderr.write(`Started ${started} drill(s).\n`);
      if (!values['no-wait']) {
        // The CLI may wait; functions never do (the schedule advances their drills).
        const limit =
          Math.max(...Object.values(config.jurisdictions).map((j) => j.drill.rtoMinutes)) * 60_000 + 60_000;
        const deadline = Date.now() + limit;
        while (results.some((r) => r.drill && r.drill.phase !== 'done') && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 1000));
          results = await drillStep(deps, { ...scope, start: 'never' });
          const active = results.filter((r) => r.drill && r.drill.phase !== 'done').length;
          process.stderr.write(`  ${active} drill(s) in progress...\n`);
        }
      }
    } else {
      await drillStep(deps, { ...scope, start: 'never' });
    }
    await notifyAfter(values.notify, deps, { job: 'restore-drill' });
    const view = await drillView(deps.store, clusterId);
    console.log(values.json ? JSON.stringify({ clusters: view }, null, 2) : renderDrillView(view));
    return view.some((v) => v.findings.length > 0 || v.drill?.result === 'fail') ? EXIT.failed : EXIT.ok;
  } finally {
    await deps.store.close();
  }
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  discover: cmdDiscover,
  backup: cmdBackup,
  drill: cmdDrill,
  budgets: cmdBudgets,
  audit: cmdAudit,
  tags: cmdTags,
  snapshot: cmdSnapshot,
  doctor: cmdDoctor,
  notify: cmdNotify,
  config: cmdConfig,
  onboard: cmdOnboard,
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
    console.log((topic && COMMAND_HELP[topic]) || HELP);
    return command ? EXIT.ok : EXIT.usage;
  }
  const handler = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (handler) return runReported(command, (args) => withNotifyExit(() => handler(args)), rest);
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
