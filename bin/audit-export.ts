/**
 * `fleetward audit plan|apply`: export mode (`audit.mode: export`) as desired state. The run
 * functions take the parsed options of `fleetward audit` (bin/audit.ts dispatches to them).
 */
import { configPath, loadConfig } from '../shared/config/load.ts';
import type { FleetConfig } from '../shared/config/schema.ts';
import {
  AUDIT_EXPORT_JOB,
  type AuditExportDeps,
  apply,
  type ClusterExportPlan,
  type ExportApplyResult,
  type ExportPlanResult,
  plan,
} from '../shared/jobs/audit-export.ts';
import { auditExportDeps } from '../shared/runtime/deps/audit-export.ts';
import { FleetwardError, UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { assertJurisdiction } from '../shared/runtime/scope.ts';
import { wrapHanging } from '../shared/runtime/table.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';
import { EXIT, progress, summaryLine } from './output.ts';

/** The options of `fleetward audit plan|apply` as parsed by bin/audit.ts. */
export interface AuditExportValues {
  config?: string | undefined;
  cluster?: string | undefined;
  jurisdiction?: string | undefined;
  json?: boolean | undefined;
  notify?: boolean | undefined;
  'dry-run'?: boolean | undefined;
  'max-changes'?: string | undefined;
  'log-level'?: string | undefined;
  'log-format'?: string | undefined;
}

/** Help lines of the two subcommands, for `fleetward audit --help`. */
export const AUDIT_EXPORT_HELP = `'plan' (export mode) compares, per cluster whose audit.mode is export, the cloud's own export
path with what it must be: EKS: a CloudWatch Logs subscription filter 'fleetward-audit' to a
Firehose stream 'fleetward-audit-<hash>' into the evidence S3 bucket, prefix
audit-export/<cluster-id>/; GKE: a Log Router sink; AKS: a diagnostic setting. It prints
+ create, ~ update (field: before -> after) and the findings (drift: gone, disabled,
destination or filter changed, delivery errors; an evidence bucket that is not write-once or
lies outside the jurisdiction refuses that cluster). It changes no cloud.
'apply' plans, then creates or updates those resources (and only those); --dry-run stops after
the plan; more clusters to change than --max-changes (default policies.maxChanges) refuses the
whole apply. Clusters in pull mode whose export still exists are reported, never deleted.`;

function maxChangesOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`--max-changes must be a non-negative integer, got "${value}"`);
  return Number(value);
}

const show = (v: string | null) => (v === null ? '(none)' : JSON.stringify(v));

/** The lines of one cluster's plan: `+`/`~`/`=`/`!` and the changed fields, then its findings. */
function clusterLines(p: ClusterExportPlan): string[] {
  const lines: string[] = [];
  const name = p.spec ? `  ${p.spec.name}` : '';
  if (p.error) lines.push(...wrapHanging(`x ${p.clusterId}  `, `could not be read: ${p.error.message}`, 4));
  else if (p.refused) lines.push(...wrapHanging(`! ${p.clusterId}${name}  `, `refused: ${p.refused}`, 4));
  else if (p.action === 'create') lines.push(`+ ${p.clusterId}${name} -> ${p.spec?.destination ?? ''}`);
  else if (p.action === 'update') {
    lines.push(`~ ${p.clusterId}${name}`);
    for (const c of p.changes)
      lines.push(...wrapHanging(`    ${c.field}: `, `${show(c.before)} -> ${show(c.after)}`, 6));
  } else if (p.action === 'none') lines.push(`= ${p.clusterId}${name}  up to date`);
  for (const f of p.findings) lines.push(...wrapHanging(`    ? ${f.kind}: `, f.message, 6));
  return lines;
}

/** Terraform-like text of a plan. */
export function renderExportPlan(result: ExportPlanResult): string {
  const lines = result.plans.flatMap(clusterLines);
  return (lines.length > 0 ? lines : ['No cluster is in export mode.']).join('\n');
}

/** Text of an apply: the plan, then what happened per cluster. */
export function renderExportApply(result: ExportApplyResult): string {
  const lines = [renderExportPlan(result)];
  if (result.tooMany) return lines.join('\n');
  if (result.dryRun) return [...lines, 'Dry run: nothing was applied.'].join('\n');
  for (const o of result.outcomes) {
    if (o.status === 'applied')
      lines.push(`${o.action === 'create' ? 'created' : 'updated'}  ${o.clusterId}`);
    if (o.status === 'failed' && o.error && !result.plans.find((p) => p.clusterId === o.clusterId)?.error)
      lines.push(...wrapHanging(`failed   ${o.clusterId}: `, o.error.message, 9));
  }
  return lines.join('\n');
}

function planCounts(s: ExportPlanResult['summary']): Record<string, number> {
  return {
    'to create': s.create,
    'to update': s.update,
    'up to date': s.unchanged,
    refused: s.refused,
    'could not be read': s.failed,
    findings: s.findings,
  };
}

function applyCounts(r: ExportApplyResult): Record<string, number> {
  if (r.tooMany) return { 'refused (over --max-changes)': r.tooMany.clusters, findings: r.summary.findings };
  if (r.dryRun) return planCounts(r.summary);
  const n = (s: ExportApplyResult['outcomes'][number]['status']) =>
    r.outcomes.filter((o) => o.status === s).length;
  return {
    applied: n('applied'),
    'up to date': n('unchanged'),
    refused: n('refused'),
    failed: n('failed'),
    findings: r.summary.findings,
  };
}

async function withDeps<T>(
  values: AuditExportValues,
  label: string,
  run: (
    deps: AuditExportDeps,
    config: FleetConfig,
    signal: AbortSignal,
    bar: ReturnType<typeof progress>,
  ) => Promise<T>,
): Promise<T> {
  const logger = cliLogger(values);
  const config = await loadConfig(configPath(values.config));
  assertJurisdiction(config.jurisdictions, values.jurisdiction);
  const deps = await auditExportDeps(config, logger);
  const controller = new AbortController();
  const interrupt = () => controller.abort(new FleetwardError('interrupted'));
  process.once('SIGINT', interrupt);
  const bar = progress(label);
  try {
    await ensureInventory(config, deps.store, logger);
    return await run(deps, config, controller.signal, bar);
  } finally {
    bar.done();
    process.off('SIGINT', interrupt);
    await deps.store.close();
  }
}

const scopeOf = (values: AuditExportValues) => ({
  clusterId: values.cluster,
  jurisdiction: values.jurisdiction,
});

/** `fleetward audit plan`; returns the exit code (1 when a cluster is refused or unreadable; findings alone do not fail). */
export async function runAuditPlan(values: AuditExportValues): Promise<number> {
  if (values['dry-run'] !== undefined || values['max-changes'] !== undefined)
    throw new UsageError('--max-changes and --dry-run are options of "audit apply"');
  return withDeps(values, 'Planning audit exports', async (deps, config, signal, bar) => {
    const onProgress = (done: number, total: number) => bar.update(done, total, 'clusters');
    const result = await plan(deps, { ...scopeOf(values), signal, onProgress });
    bar.done();
    const notified = await notifyAfter(
      values.notify,
      { config, store: deps.store, logger: deps.logger },
      { job: AUDIT_EXPORT_JOB, runId: result.runId },
    );
    const s = result.summary;
    const code = !notified || s.refused + s.failed > 0 ? EXIT.failed : EXIT.ok;
    console.log(
      values.json
        ? JSON.stringify(result, null, 2)
        : `${renderExportPlan(result)}\n${summaryLine(planCounts(s), code)}`,
    );
    return code;
  });
}

/** `fleetward audit apply`; returns the exit code (1 when refused, or a cluster failed or was refused). */
export async function runAuditApply(values: AuditExportValues): Promise<number> {
  const maxChanges = maxChangesOf(values['max-changes']);
  return withDeps(values, 'Applying audit exports', async (deps, config, signal, bar) => {
    const onProgress = (done: number, total: number) => bar.update(done, total, 'clusters');
    // Run by hand, apply is the user's explicit action: it applies in every stage unless --dry-run.
    const result = await apply(deps, {
      ...scopeOf(values),
      dryRun: values['dry-run'] === true,
      maxChanges,
      signal,
      onProgress,
    });
    bar.done();
    const notified = await notifyAfter(
      values.notify,
      { config, store: deps.store, logger: deps.logger },
      { job: AUDIT_EXPORT_JOB, runId: result.runId },
    );
    const bad = result.outcomes.some((o) => o.status === 'failed' || o.status === 'refused');
    const code = !notified || result.tooMany || bad ? EXIT.failed : EXIT.ok;
    console.log(
      values.json
        ? JSON.stringify(result, null, 2)
        : `${renderExportApply(result)}\n${summaryLine(applyCounts(result), code)}`,
    );
    if (result.tooMany) console.error(`fleetward: ${result.tooMany.message}`);
    return code;
  });
}
