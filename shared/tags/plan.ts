/**
 * The tag plan of one cluster, computed without any I/O from its current tags (a fresh
 * read), the tag policy and the cluster's cloud:
 *  - derived keys (`jurisdiction`, `region`, `cloud`, `managed-by`, `country`) are set to
 *    what Fleetward knows when they are missing; one that already holds another value was
 *    set by someone else (`managed-by: terraform`, `region: emea`): a `conflicting-tag`
 *    finding, never overwritten, unless the policy says `overwrite: true` for that key;
 *  - required keys that are missing get their `default`; without one they are a
 *    `missing-tag` finding (an owner is never invented);
 *  - a present required value outside `values` or not matching `pattern` is an
 *    `invalid-tag` finding and never rewritten (with `overwrite: true` and a `default`, the
 *    default replaces it);
 *  - every value that would be written passes the cloud's rules (`tagProblems`), or it is
 *    dropped into an `unsendable-tag` finding and never sent.
 * On GCP keys are label keys (`gcpLabelKey`) and derived values are lower-cased; on Azure
 * existing keys match case-insensitively (`Jurisdiction` counts as `jurisdiction`, and a
 * change keeps the spelling the resource already has).
 */
import type { TagPolicy } from '../config/schema.ts';
import type { CloudId, Cluster, RegionCloud } from '../model.ts';
import { UNASSIGNED } from '../model.ts';
import { comparableKey, gcpLabelKey, TAG_RULES, tagProblems } from './rules.ts';

/** The value `managed-by` is given. */
export const MANAGED_BY = 'fleetward';

export interface TagChange {
  /** The key as it is written (a label key on GCP; the existing spelling on Azure). */
  key: string;
  /** The value now, `null` when the key is missing. */
  before: string | null;
  after: string;
  /** Why it is written: a derived key or a required key's default. */
  source: 'derived' | 'default';
}

export type TagFindingKind =
  /** A required key without a default is missing (it is never invented). */
  | 'missing-tag'
  /** A required key's present value is not allowed by the policy (it is never rewritten). */
  | 'invalid-tag'
  /** A derived key holds a value someone else set (never overwritten without `overwrite: true`). */
  | 'conflicting-tag'
  /** A value Fleetward would write breaks the cloud's rules (it is never sent). */
  | 'unsendable-tag'
  /** Fleetward cannot derive the value (a cluster in no jurisdiction, a region without a country). */
  | 'underivable-tag';

export interface TagFinding {
  kind: TagFindingKind;
  key: string;
  message: string;
}

export interface TagPlan {
  clusterId: string;
  cloud: CloudId;
  region: string;
  name: string;
  /** `false` for clusters with no cloud resource to tag (kubeconfig): no changes, no findings. */
  taggable: boolean;
  changes: TagChange[];
  findings: TagFinding[];
}

/** The value a derived key has for a cluster, or why there is none. */
function derivedValue(key: string, cluster: Cluster): { value: string } | { why: string } {
  switch (key) {
    case 'jurisdiction':
      return cluster.jurisdiction === UNASSIGNED
        ? { why: `cluster is in no configured jurisdiction (region ${cluster.region})` }
        : { value: cluster.jurisdiction };
    case 'region':
      return { value: cluster.region };
    case 'cloud':
      return { value: cluster.cloud };
    case 'managed-by':
      return { value: MANAGED_BY };
    case 'country':
      return cluster.country
        ? { value: cluster.country.toLowerCase() }
        : { why: `the country of region ${cluster.region} is unknown` };
    default:
      return { why: `"${key}" is not a key Fleetward derives` };
  }
}

/** Whether a value satisfies a required key's `values` and `pattern`. */
function allowed(rule: TagPolicy['required'][string], value: string): boolean {
  if (rule.values && !rule.values.includes(value)) return false;
  if (rule.pattern !== undefined && !new RegExp(`^(?:${rule.pattern})$`, 'u').test(value)) return false;
  return true;
}

function ruleText(rule: TagPolicy['required'][string]): string {
  const parts: string[] = [];
  if (rule.values) parts.push(`one of ${rule.values.map((v) => `"${v}"`).join(', ')}`);
  if (rule.pattern !== undefined) parts.push(`matching /${rule.pattern}/`);
  return parts.join(' and ');
}

/** The plan of a cluster that cannot be tagged (kubeconfig contexts). */
export function notTaggable(cluster: Cluster): TagPlan {
  return {
    clusterId: cluster.id,
    cloud: cluster.cloud,
    region: cluster.region,
    name: cluster.name,
    taggable: false,
    changes: [],
    findings: [],
  };
}

/** The changes and findings of one cluster; see the module comment for the rules. */
export function planTags(cluster: Cluster, current: Record<string, string>, policy: TagPolicy): TagPlan {
  if (cluster.cloud === 'kubeconfig') return notTaggable(cluster);
  const cloud: RegionCloud = cluster.cloud;
  const changes: TagChange[] = [];
  const findings: TagFinding[] = [];
  const existing = new Map<string, string>();
  for (const key of Object.keys(current)) existing.set(comparableKey(cloud, key), key);
  /** The key a policy key is written as, and what the resource holds under it now. */
  const locate = (policyKey: string) => {
    const wanted = cloud === 'gcp' ? gcpLabelKey(policyKey) : policyKey;
    const found = existing.get(comparableKey(cloud, wanted));
    return found === undefined
      ? { key: wanted, before: null }
      : { key: found, before: current[found] ?? null };
  };
  const labelSafe = (value: string) => (cloud === 'gcp' ? value.toLowerCase() : value);
  /** Plans `value` under `key`, unless the cloud's rules refuse it. */
  const propose = (key: string, before: string | null, after: string, source: TagChange['source']) => {
    if (before === after) return;
    const problems = tagProblems(cloud, key, after);
    if (problems.length > 0) {
      findings.push({
        kind: 'unsendable-tag',
        key,
        message: `${key}: "${after}" cannot be written on ${cloud} (${problems.join('; ')}); not sent`,
      });
      return;
    }
    changes.push({ key, before, after, source });
  };

  const derived = new Set<string>(policy.derived);
  for (const policyKey of policy.derived) {
    const { key, before } = locate(policyKey);
    const derivation = derivedValue(policyKey, cluster);
    if ('why' in derivation) {
      findings.push({
        kind: 'underivable-tag',
        key,
        message: `${key}: cannot derive a value: ${derivation.why}`,
      });
      continue;
    }
    const after = labelSafe(derivation.value);
    const rule = policy.required[policyKey];
    if (rule && !allowed(rule, after)) {
      findings.push({
        kind: 'invalid-tag',
        key,
        message: `${key}: derived value "${after}" is not ${ruleText(rule)}; not written`,
      });
      continue;
    }
    if (before !== null && before !== after && rule?.overwrite !== true) {
      findings.push({
        kind: 'conflicting-tag',
        key,
        message: `${key}: holds "${before}", not the derived "${after}"; not overwritten (set policies.tags.required.${policyKey}.overwrite: true to replace it)`,
      });
      continue;
    }
    propose(key, before, after, 'derived');
  }

  for (const [policyKey, rule] of Object.entries(policy.required)) {
    if (derived.has(policyKey)) continue;
    const { key, before } = locate(policyKey);
    if (before !== null) {
      if (!allowed(rule, before) && rule.overwrite === true && rule.default !== undefined) {
        propose(key, before, labelSafe(rule.default), 'default');
      } else if (!allowed(rule, before)) {
        findings.push({
          kind: 'invalid-tag',
          key,
          message: `${key}: "${before}" is not ${ruleText(rule)} (required; not rewritten)`,
        });
      }
      continue;
    }
    if (rule.default === undefined) {
      findings.push({ kind: 'missing-tag', key, message: `${key}: missing (required; not invented)` });
      continue;
    }
    propose(key, null, labelSafe(rule.default), 'default');
  }

  // New keys must fit under the cloud's tag count; changes to existing keys always do.
  const maxTags = TAG_RULES[cloud].maxTags;
  const added = changes.filter((c) => c.before === null);
  const room = maxTags - Object.keys(current).length;
  if (added.length > room) {
    for (const change of added.slice(Math.max(0, room))) {
      changes.splice(changes.indexOf(change), 1);
      findings.push({
        kind: 'unsendable-tag',
        key: change.key,
        message: `${change.key}: adding it would exceed ${cloud}'s ${maxTags} tags per resource; not sent`,
      });
    }
  }

  return {
    clusterId: cluster.id,
    cloud,
    region: cluster.region,
    name: cluster.name,
    taggable: true,
    changes,
    findings,
  };
}

/** The changes of a plan as the key/value map a tagger writes. */
export function changeSet(plan: TagPlan): Record<string, string> {
  return Object.fromEntries(plan.changes.map((c) => [c.key, c.after]));
}
