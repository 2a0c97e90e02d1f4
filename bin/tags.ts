/**
 * `fleetward tags plan|apply`: the tag policy of `fleet.yaml` against every cluster of the
 * saved inventory (discovered first when the inventory is empty). Also runnable alone
 * (`node bin/tags.ts plan ...`).
 */
import { configPath, loadConfig } from '../shared/config/load.ts';
import type { FleetConfig } from '../shared/config/schema.ts';
import { apply, plan, TAGS_JOB, type TagApplyResult, type TagJobDeps } from '../shared/jobs/tags.ts';
import { type Log, systemClock } from '../shared/ports.ts';
import { FleetwardError, UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { wrapHanging } from '../shared/runtime/table.ts';
import { stateConfig } from '../shared/state/config.ts';
import { openStateStore } from '../shared/state/index.ts';
import {
  clusterLabel,
  planJson,
  renderClusterPlan,
  renderPlanText,
  summarise,
} from '../shared/tags/render.ts';
import { createTaggers } from '../shared/tags/taggers.ts';
import { LOG_OPTIONS, parseCommandArgs, subcommand } from './args.ts';
import { runReported } from './errors.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';
import { EXIT, progress, summaryLine } from './output.ts';

export const TAGS_HELP = `Usage:
  fleetward tags plan  [--cluster ID] [--config FILE] [--json] [--log-level LEVEL] [--log-format FORMAT]
  fleetward tags apply [--cluster ID] [--max-changes N] [--dry-run] [--config FILE] [--json] [--log-level LEVEL]
                       [--log-format FORMAT]

Checks every cluster of the saved inventory (or one) against policies.tags of the config.
Tags are read fresh from each cloud (EKS tags, GKE labels, AKS tags); kubeconfig clusters
have nothing to tag and are listed as not taggable.

'plan' prints, per cluster, the tags Fleetward would write: the derived keys (jurisdiction,
region, cloud, managed-by, country) and the defaults of missing required keys, and the
findings: required tags that are missing (e.g. owner: never invented) or have a value the
policy does not allow (never rewritten), and values a cloud would refuse (never sent).
It writes nothing to any cloud; it records the plan and the findings in the state store.

'apply' plans, then writes the planned values (and only those: existing tags are kept).
Run by hand it applies in every stage; the scheduled reconcile-tags function only plans
outside the prod stage. --dry-run plans without writing. A change is one cluster whose
tags are written (as terraform counts resources): when the plan changes more clusters than
--max-changes (default: policies.maxChanges), the whole apply is refused and nothing is
written. One cluster failing never stops the others; the result names each.

--json prints { clusters: [...], summary: {...} } for plan and the full result for apply.
--notify sends the job's Slack digest of new findings after the run, as the scheduled function does.
Exit: 0 done, 1 some cluster could not be read or written, or the apply was refused,
2 bad usage or config. Findings alone do not fail the command.`;

function maxChangesOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`--max-changes must be a non-negative integer, got "${value}"`);
  return Number(value);
}

/** Deps of the tag job; on an empty inventory, discovers first (as `backup` and `drill` do). */
async function tagJobDeps(config: FleetConfig, logger: Log): Promise<TagJobDeps> {
  const store = await openStateStore(stateConfig(config));
  await ensureInventory(config, store, logger);
  return { config, store, taggers: createTaggers(config, { logger }), logger, clock: systemClock };
}

function renderApply(result: TagApplyResult): string {
  const lines: string[] = [];
  if (result.refused || result.dryRun) {
    lines.push(renderPlanText(result.plans));
    if (result.dryRun && !result.refused) lines.push('Dry run: nothing was written.');
    return lines.join('\n');
  }
  const planOf = new Map(result.plans.map((p) => [p.clusterId, p]));
  for (const o of [...result.outcomes].sort((a, b) => a.clusterId.localeCompare(b.clusterId))) {
    const p = planOf.get(o.clusterId)!;
    if (o.status === 'failed') {
      lines.push(...wrapHanging(`x ${clusterLabel(p)}  `, `failed: ${o.error.message}`, 4));
      for (const c of o.changes) lines.push(`    - ${c.key} = ${JSON.stringify(c.after)} (not written)`);
      continue;
    }
    if (o.status === 'applied')
      lines.push(...renderClusterPlan(p).map((l, i) => (i === 0 ? `${l}  applied` : l)));
    else lines.push(...renderClusterPlan(p));
  }
  const s = result.summary;
  lines.push(
    '',
    `Apply: ${s.changes} changes on ${s.clusters} clusters: ${s.applied} clusters applied, ${s.failed} failed; ${s.findings} findings.`,
  );
  return lines.join('\n');
}

/** A plan's clusters for the summary line: to change, findings, not taggable, unreadable. */
function planCounts(plans: TagApplyResult['plans']): Record<string, number> {
  const s = summarise(plans);
  return {
    'to change': s.clusters,
    findings: s.findings,
    'not taggable': s.notTaggable,
    'could not be read': s.failed,
  };
}

/** An apply's clusters for the summary line (a refused or dry-run apply counts what it would change). */
function applyCounts(result: TagApplyResult): Record<string, number> {
  const s = result.summary;
  if (result.refused) return { 'refused (over --max-changes)': s.clusters, findings: s.findings };
  if (result.dryRun) return { 'to change (dry run)': s.clusters, findings: s.findings, failed: s.failed };
  const n = (status: TagApplyResult['outcomes'][number]['status']) =>
    result.outcomes.filter((o) => o.status === status).length;
  return {
    applied: n('applied'),
    unchanged: n('unchanged'),
    'not taggable': n('not-taggable'),
    failed: n('failed'),
    findings: s.findings,
  };
}

/** `fleetward tags ...`; returns the exit code, throws what `reportError` reports. */
export async function cmdTags(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('tags', {
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      cluster: { type: 'string' },
      json: { type: 'boolean', default: false },
      ...LOG_OPTIONS,
      'max-changes': { type: 'string' },
      'dry-run': { type: 'boolean' },
      notify: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(TAGS_HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  let deps: TagJobDeps | undefined;
  try {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    subcommand('tags', sub, ['plan', 'apply']);
    if (sub === 'plan' && (values['max-changes'] !== undefined || values['dry-run'] !== undefined))
      throw new UsageError('--max-changes and --dry-run are options of "tags apply"');
    const logger = cliLogger(values);
    const maxChanges = maxChangesOf(values['max-changes']);
    const config = await loadConfig(configPath(values.config));
    deps = await tagJobDeps(config, logger);
    const scope = values.cluster ? { clusterId: values.cluster } : {};
    const controller = new AbortController();
    const interrupt = () => controller.abort(new FleetwardError('interrupted'));
    process.once('SIGINT', interrupt);
    const bar = progress(sub === 'plan' ? 'Reading tags' : 'Reading and writing tags');
    const onProgress = (done: number, total: number) => bar.update(done, total, 'clusters');
    try {
      if (sub === 'plan') {
        const result = await plan(deps, { ...scope, signal: controller.signal, onProgress });
        bar.done();
        const notified = await notifyAfter(values.notify, deps, { job: TAGS_JOB, runId: result.runId });
        const code = result.summary.failed > 0 || !notified ? EXIT.failed : EXIT.ok;
        console.log(
          values.json
            ? JSON.stringify(planJson(result.plans), null, 2)
            : `${renderPlanText(result.plans)}\n${summaryLine(planCounts(result.plans), code)}`,
        );
        return code;
      }
      // Run by hand, apply is the user's explicit action: it applies in every stage unless --dry-run.
      const result = await apply(deps, {
        ...scope,
        maxChanges,
        dryRun: values['dry-run'] === true,
        signal: controller.signal,
        onProgress,
      });
      bar.done();
      const notified = await notifyAfter(values.notify, deps, { job: TAGS_JOB, runId: result.runId });
      const code = result.refused || result.summary.failed > 0 || !notified ? EXIT.failed : EXIT.ok;
      console.log(
        values.json
          ? JSON.stringify(result, null, 2)
          : `${renderApply(result)}\n${summaryLine(applyCounts(result), code)}`,
      );
      if (result.refused) console.error(`fleetward: ${result.refused.message}`);
      return code;
    } finally {
      bar.done();
      process.off('SIGINT', interrupt);
    }
  } finally {
    if (deps) {
      await deps.taggers.close();
      await deps.store.close();
    }
  }
}

if (import.meta.main) {
  process.exitCode = await runReported('tags', cmdTags, process.argv.slice(2));
}
