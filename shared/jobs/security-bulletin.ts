/**
 * Provider security bulletins (GKE `SecurityBulletinEvent`): which clusters of the inventory a
 * bulletin affects, and their findings. A bulletin names the minor versions it affects
 * (`affectedSupportedMinors`) and, per minor, the first patched version (`patchedVersions`); a
 * GKE cluster is affected when its version is in an affected minor and below that minor's
 * patched version (or its minor has no patched version yet).
 *
 * Findings are kept in the findings namespace as `security-bulletin/<cluster-id>` (one list
 * per cluster, one finding per bulletin, its message starting with the bulletin id), where
 * the compliance evidence reads every job's open findings. GKE sends the same bulletin once
 * per cluster with notifications on, so a cluster that already has the bulletin's finding is
 * not reported again.
 *
 * Each finding keeps the bulletin's facts (`bulletin`: minors, patched versions, CVEs, URI, the
 * version it was found on), so the `lifecycle.security-bulletins` control re-checks it against
 * the cluster's current inventory version: a cluster upgraded past the patched version no
 * longer counts as affected, without anyone deleting the record.
 */
import { isAffected } from '../compliance/bulletins.ts';
import type { ClusterEvent } from '../events/model.ts';
import type { Cluster, Finding } from '../model.ts';
import type { StateStore } from '../ports.ts';
import {
  type BulletinFinding,
  findingsKey,
  INVENTORY,
  NS,
  SECURITY_BULLETIN_JOB,
  SECURITY_BULLETIN_KIND,
} from '../state/records.ts';

/** The facts of a bulletin Fleetward uses (from the event's `detail`). */
export interface Bulletin {
  bulletinId: string;
  severity: Finding['severity'];
  briefDescription: string | undefined;
  cveIds: string[];
  affectedSupportedMinors: string[];
  patchedVersions: string[];
  suggestedUpgradeTarget: string | undefined;
  bulletinUri: string | undefined;
  manualStepsRequired: boolean;
}

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/** GKE's severity words (`Critical`, `High`, `Medium`, `Low`) as a finding severity; unknown: high. */
function severityOf(value: unknown): Finding['severity'] {
  const s = typeof value === 'string' ? value.toLowerCase() : '';
  return s === 'critical' || s === 'high' || s === 'medium' || s === 'low' ? s : 'high';
}

/** The bulletin a `security-bulletin` event carries. */
export function bulletinOf(event: ClusterEvent): Bulletin {
  const d = event.detail;
  return {
    bulletinId: String(d.bulletinId),
    severity: severityOf(d.severity),
    briefDescription: typeof d.briefDescription === 'string' ? d.briefDescription : undefined,
    cveIds: strings(d.cveIds),
    affectedSupportedMinors: strings(d.affectedSupportedMinors),
    patchedVersions: strings(d.patchedVersions),
    suggestedUpgradeTarget:
      typeof d.suggestedUpgradeTarget === 'string' ? d.suggestedUpgradeTarget : undefined,
    bulletinUri: typeof d.bulletinUri === 'string' ? d.bulletinUri : undefined,
    manualStepsRequired: d.manualStepsRequired === true,
  };
}

function message(bulletin: Bulletin, version: string): string {
  const cves = bulletin.cveIds.length > 0 ? ` (${bulletin.cveIds.join(', ')})` : '';
  const target = bulletin.suggestedUpgradeTarget
    ? `upgrade to ${bulletin.suggestedUpgradeTarget} or a patched version`
    : 'upgrade to a patched version';
  const manual = bulletin.manualStepsRequired ? '; the bulletin requires manual steps' : '';
  const about = bulletin.briefDescription ? ` ${bulletin.briefDescription}` : '';
  return `${bulletin.bulletinId}: version ${version} is affected${cves}; ${target}${manual}.${about}`;
}

/** The finding of `bulletin` on an affected cluster, with the bulletin's facts. */
export function bulletinFinding(
  cluster: Cluster & { kubernetesVersion: string },
  bulletin: Bulletin,
  at: string,
): BulletinFinding {
  return {
    clusterId: cluster.id,
    jurisdiction: cluster.jurisdiction,
    kind: SECURITY_BULLETIN_KIND,
    severity: bulletin.severity,
    message: message(bulletin, cluster.kubernetesVersion),
    at,
    bulletin: {
      bulletinId: bulletin.bulletinId,
      severity: bulletin.severity,
      cveIds: bulletin.cveIds,
      affectedSupportedMinors: bulletin.affectedSupportedMinors,
      patchedVersions: bulletin.patchedVersions,
      suggestedUpgradeTarget: bulletin.suggestedUpgradeTarget ?? null,
      bulletinUri: bulletin.bulletinUri ?? null,
      manualStepsRequired: bulletin.manualStepsRequired,
      version: cluster.kubernetesVersion,
    },
  };
}

const ofBulletin = (bulletinId: string) => (f: Finding) =>
  f.kind === SECURITY_BULLETIN_KIND && f.message.startsWith(`${bulletinId}:`);

/**
 * Records the bulletin's finding on every affected GKE cluster of the inventory that does not
 * have it yet, keeping the cluster's findings of other bulletins. Returns every affected
 * cluster and the findings that are new.
 */
export async function recordBulletin(
  store: StateStore,
  bulletin: Bulletin,
  at: string,
): Promise<{ affected: Cluster[]; newFindings: Finding[] }> {
  const clusters = (await store.list<Cluster>(INVENTORY)).map((i) => i.value);
  const affected = clusters.filter(
    (c): c is Cluster & { kubernetesVersion: string } =>
      c.cloud === 'gcp' && c.kubernetesVersion !== null && isAffected(c.kubernetesVersion, bulletin),
  );
  const newFindings: Finding[] = [];
  for (const cluster of affected) {
    const key = findingsKey(SECURITY_BULLETIN_JOB, cluster.id);
    const open = (await store.get<Finding[]>(NS.findings, key)) ?? [];
    if (open.some(ofBulletin(bulletin.bulletinId))) continue;
    const finding = bulletinFinding(cluster, bulletin, at);
    await store.putMany(NS.findings, [{ key, value: [...open, finding] }]);
    newFindings.push(finding);
  }
  return { affected, newFindings };
}
