/**
 * Tag plans for people (`terraform plan`-like text) and for machines (JSON).
 *
 *   ~ aws/111111111111/eu-central-1/payments
 *       + jurisdiction = "eu"
 *       ~ region = "eu-west-1" -> "eu-central-1"
 *       ! owner: missing (required; not invented)
 *
 *   Plan: 2 changes on 1 clusters, 1 findings.
 *
 * Clusters are named by their id, the one `--cluster` takes; every line fits 120 columns.
 */
import type { ErrorInfo } from '../runtime/errors.ts';
import { wrapHanging } from '../runtime/table.ts';
import type { TagPlan } from './plan.ts';

/** A cluster's plan, with the error of its read when the tags could not be read. */
export type ClusterTagPlan = TagPlan & { error?: ErrorInfo };

export interface PlanSummary {
  /** Tags to set, over every cluster. */
  changes: number;
  /** Clusters with at least one change. */
  clusters: number;
  findings: number;
  /** Clusters without a cloud resource to tag (kubeconfig contexts). */
  notTaggable: number;
  /** Clusters whose tags could not be read. */
  failed: number;
}

export interface PlanJson {
  clusters: ClusterTagPlan[];
  summary: PlanSummary;
}

export function summarise(plans: readonly ClusterTagPlan[]): PlanSummary {
  return {
    changes: plans.reduce((n, p) => n + p.changes.length, 0),
    clusters: plans.filter((p) => p.changes.length > 0).length,
    findings: plans.reduce((n, p) => n + p.findings.length, 0),
    notTaggable: plans.filter((p) => !p.taggable).length,
    failed: plans.filter((p) => p.error !== undefined).length,
  };
}

export function planJson(plans: readonly ClusterTagPlan[]): PlanJson {
  return { clusters: [...plans], summary: summarise(plans) };
}

const quote = (value: string) => JSON.stringify(value);

/** The heading of a cluster: its id, as `--cluster` takes it. */
export function clusterLabel(plan: Pick<TagPlan, 'clusterId'>): string {
  return plan.clusterId;
}

/** The block of one cluster, or nothing when it has no change, finding or error. */
export function renderClusterPlan(plan: ClusterTagPlan): string[] {
  if (plan.error)
    return [`x ${clusterLabel(plan)}`, ...wrapHanging('    could not read tags: ', plan.error.message, 6)];
  if (plan.changes.length === 0 && plan.findings.length === 0) return [];
  const lines = [`${plan.changes.length > 0 ? '~' : '!'} ${clusterLabel(plan)}`];
  for (const c of plan.changes) {
    lines.push(
      c.before === null
        ? `    + ${c.key} = ${quote(c.after)}`
        : `    ~ ${c.key} = ${quote(c.before)} -> ${quote(c.after)}`,
    );
  }
  for (const f of plan.findings) lines.push(...wrapHanging('    ! ', f.message, 6));
  return lines;
}

/** The whole plan as text, ending with the `Plan: ...` summary line. */
export function renderPlanText(plans: readonly ClusterTagPlan[]): string {
  const blocks = [...plans]
    .sort((a, b) => clusterLabel(a).localeCompare(clusterLabel(b)))
    .map(renderClusterPlan)
    .filter((b) => b.length > 0)
    .map((b) => b.join('\n'));
  const s = summarise(plans);
  const extra = [
    s.notTaggable > 0 ? `${s.notTaggable} not taggable (kubeconfig)` : '',
    s.failed > 0 ? `${s.failed} could not be read` : '',
  ].filter(Boolean);
  const summary = `Plan: ${s.changes} changes on ${s.clusters} clusters, ${s.findings} findings.${
    extra.length > 0 ? ` (${extra.join(', ')})` : ''
  }`;
  return [...blocks, '', summary].join('\n').replace(/^\n/, '');
}
