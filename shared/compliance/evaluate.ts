/**
 * Evaluates the catalogue's controls for one cluster from its evidence. Pure: no I/O, the
 * time is `ctx.now`, and the same inputs always give the same results.
 *
 * Rules every control follows:
 *  - `unknown` when the evidence is absent (a job never ran for the cluster, the cloud does
 *    not report the setting); the reason names what is missing. Never `pass` by default.
 *  - `fail` always carries a `remedy` naming what to change (the key, setting or bucket).
 *  - `not-applicable` only when the control cannot apply:
 *      - kubeconfig clusters: required tags and budgets (no cloud resource or billing scope)
 *        and the provider's version support (no provider calendar);
 *      - clusters other than GKE: provider security bulletins (only GKE publishes them per
 *        cluster, as cluster notifications Fleetward receives);
 *      - no required tags configured: required tags;
 *      - clusters in no jurisdiction (`unassigned`): the controls measured against a
 *        jurisdiction's settings (backup storage and audit archive residency, audit archive,
 *        audit chain, RPO, restore drill). Fleetward refuses to back up or archive such a
 *        cluster at all, so those controls have nothing to measure; the failure is
 *        reported once, by `residency.cluster-region`, which always fails for them.
 *  - Open findings of the last job run take precedence over older records: a job that
 *    just found a problem (`audit-logging-off`, `bsl-outside-jurisdiction`) fails the
 *    control even when an earlier record looked fine.
 *  - Every result carries the evidence items it used (source, record id, time, values).
 */
import { covers } from '../budgets/plan.ts';
import { budgetAddress } from '../budgets/port.ts';
import type { FleetConfig, JurisdictionConfig, ResidencyException } from '../config/schema.ts';
import { type Cluster, type Finding, isRegionCloud, type RegionCloud, UNASSIGNED } from '../model.ts';
import { type Residency, regionCountry } from '../residency/index.ts';
import { type BulletinFinding, SECURITY_BULLETIN_JOB, SECURITY_BULLETIN_KIND } from '../state/records.ts';
import { comparableKey } from '../tags/rules.ts';
import { isAffected, isReadableVersion, patchedVersionFor } from './bulletins.ts';
import { CONTROLS, EVIDENCE_SOURCES as SRC } from './catalogue.ts';
import type { ClusterEvidence, Recorded } from './evidence.ts';
import { oldestSupportedMinor, supportStatus } from './k8s-support.ts';
import type { ControlResult, ControlStatus, EvidenceItem, StatusCounts } from './schema.ts';

/** What an evaluation needs besides the cluster and its evidence. */
export interface EvaluationContext {
  config: FleetConfig;
  residency: Residency;
  now: Date;
}

/** The newest archived audit event and the last successful collection must be at most this old. */
export const AUDIT_MAX_AGE_MS = 26 * 3_600_000;

const DAY_MS = 86_400_000;

type Evaluator = (cluster: Cluster, evidence: ClusterEvidence, ctx: EvaluationContext) => Outcome;

/** A result before the control id is attached. */
type Outcome = Omit<ControlResult, 'control'>;

const pass = (reason: string, evidence: EvidenceItem[]): Outcome => ({ status: 'pass', reason, evidence });
const fail = (reason: string, remedy: string, evidence: EvidenceItem[]): Outcome => ({
  status: 'fail',
  reason,
  evidence,
  remedy,
});
const unknown = (reason: string, evidence: EvidenceItem[]): Outcome => ({
  status: 'unknown',
  reason,
  evidence,
});
const notApplicable = (reason: string, evidence: EvidenceItem[]): Outcome => ({
  status: 'not-applicable',
  reason,
  evidence,
});

function item(
  source: string,
  recordId: string | null,
  observedAt: string | null,
  values: Record<string, unknown>,
): EvidenceItem {
  return { source, recordId, observedAt, values };
}

function inventoryItem(cluster: Cluster, fields: readonly (keyof Cluster)[]): EvidenceItem {
  const values: Record<string, unknown> = {};
  for (const field of fields) values[field] = cluster[field] ?? null;
  return item(SRC.inventory, `inventory/${cluster.id}`, null, values);
}

function configItem(path: string, value: unknown): EvidenceItem {
  return item(SRC.config, null, null, { [path]: value ?? null });
}

function findingsItem(record: Recorded<Finding[]>, findings: readonly Finding[]): EvidenceItem {
  const at =
    findings
      .map((f) => f.at)
      .sort()
      .at(-1) ?? null;
  return item(SRC.findings, record.recordId, at, {
    findings: findings.map((f) => ({ kind: f.kind, severity: f.severity, message: f.message })),
  });
}

/** Open findings of `job` for the cluster whose kind is one of `kinds`, with the record they came from. */
function openFindings(
  evidence: ClusterEvidence,
  job: string,
  kinds: readonly string[],
): { record: Recorded<Finding[]>; findings: Finding[] } | undefined {
  const record = evidence.findings[job];
  if (!record) return undefined;
  const findings = record.value.filter((f) => kinds.includes(f.kind));
  return findings.length > 0 ? { record, findings } : undefined;
}

function jurisdictionOf(cluster: Cluster, ctx: EvaluationContext): JurisdictionConfig | undefined {
  if (cluster.jurisdiction === UNASSIGNED) return undefined;
  return Object.hasOwn(ctx.config.jurisdictions, cluster.jurisdiction)
    ? ctx.config.jurisdictions[cluster.jurisdiction]
    : undefined;
}

const UNASSIGNED_REASON =
  'cluster is in no configured jurisdiction, so there is no jurisdiction setting to measure against (see residency.cluster-region)';

/** Whether a country may hold data of a jurisdiction at `now`: one of its countries, or allowed by a live exception. */
function countryAllowed(
  country: string,
  jurisdiction: string,
  ctx: EvaluationContext,
): { allowed: boolean; via?: ResidencyException } {
  if (ctx.residency.countries(jurisdiction).includes(country)) return { allowed: true };
  const today = ctx.now.toISOString().slice(0, 10);
  const exceptions = ctx.config.jurisdictions[jurisdiction]?.exceptions ?? [];
  const live = exceptions.find((e) => e.expires >= today && e.allowCountries.includes(country));
  return live ? { allowed: true, via: live } : { allowed: false };
}

function exceptionNote(via: ResidencyException | undefined): string {
  return via ? ` through the exception expiring ${via.expires} (${via.reason})` : '';
}

function ageText(ms: number): string {
  const hours = ms / 3_600_000;
  return hours < 48 ? `${Math.round(hours * 10) / 10} h` : `${Math.round((hours / 24) * 10) / 10} days`;
}

// ---------------------------------------------------------------------------------------
// residency

const clusterRegion: Evaluator = (cluster, _evidence, ctx) => {
  const ev = [inventoryItem(cluster, ['cloud', 'region', 'country', 'jurisdiction'])];
  if (cluster.jurisdiction === UNASSIGNED) {
    const where = cluster.country ? `country ${cluster.country}` : 'a country the region table does not know';
    return fail(
      `region ${cluster.region} (${where}) is in no configured jurisdiction`,
      `move the workload to a cluster in a region of a configured jurisdiction, or add ${
        cluster.country ?? 'the region\u2019s country'
      } to jurisdictions.<id>.countries in fleet.yaml if that law governs the data (a kubeconfig context may set contexts[].country)`,
      ev,
    );
  }
  const jurisdiction = jurisdictionOf(cluster, ctx);
  ev.push(
    configItem(
      `jurisdictions.${cluster.jurisdiction}.countries`,
      ctx.residency.countries(cluster.jurisdiction),
    ),
  );
  if (!jurisdiction) {
    return fail(
      `the inventory places the cluster in jurisdiction "${cluster.jurisdiction}", which fleet.yaml no longer configures`,
      `run discover to place the cluster again, or restore jurisdictions.${cluster.jurisdiction} in fleet.yaml`,
      ev,
    );
  }
  if (!cluster.country) {
    return unknown('the country of the cluster\u2019s region is not recorded in the inventory', ev);
  }
  const decision = countryAllowed(cluster.country, cluster.jurisdiction, ctx);
  if (!decision.allowed) {
    return fail(
      `region ${cluster.region} is in ${cluster.country}, outside jurisdiction "${cluster.jurisdiction}", and no live exception allows it`,
      `move the cluster to a region in ${ctx.residency.countries(cluster.jurisdiction).join(', ')}, or record an approved exception for ${cluster.country} in jurisdictions.${cluster.jurisdiction}.exceptions`,
      ev,
    );
  }
  return pass(
    `region ${cluster.region} is in ${cluster.country}, inside jurisdiction "${cluster.jurisdiction}"${exceptionNote(decision.via)}`,
    ev,
  );
};

const backupStorage: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['jurisdiction'])];
  if (!jurisdictionOf(cluster, ctx)) return notApplicable(UNASSIGNED_REASON, ev);
  const problem = openFindings(evidence, 'backup', ['bsl-outside-jurisdiction', 'bsl-unlocatable']);
  if (problem) {
    ev.push(findingsItem(problem.record, problem.findings));
    return fail(
      `the backup preflight refused the storage location: ${problem.findings.map((f) => f.message).join('; ')}`,
      `point the Velero BackupStorageLocation "${ctx.config.jurisdictions[cluster.jurisdiction]?.backup.storageLocation}" (namespace ${ctx.config.velero.namespace}) at a bucket in a region of ${ctx.residency.countries(cluster.jurisdiction).join(', ')} that Fleetward can locate`,
      ev,
    );
  }
  const latest = evidence.backups.filter((b) => b.value.bucket !== null).at(-1);
  if (!latest) {
    return unknown(
      'no backup record with a located bucket (backups namespace): the backup job has not backed this cluster up yet',
      ev,
    );
  }
  const bucket = latest.value.bucket!;
  ev.push(
    item(SRC.backups, latest.recordId, latest.value.createdAt || null, {
      backup: latest.value.name,
      storageLocation: latest.value.storageLocation,
      bucket,
    }),
  );
  const cloud = bucket.cloud as RegionCloud;
  const country = isRegionCloud(cloud as Cluster['cloud']) ? regionCountry(cloud, bucket.region) : undefined;
  const remedy = `move backups of storage location "${latest.value.storageLocation}" from bucket ${bucket.name} (${bucket.cloud} ${bucket.region}) to a bucket in ${ctx.residency.countries(cluster.jurisdiction).join(', ')}`;
  if (country === undefined) {
    return fail(
      `bucket ${bucket.name} is in ${bucket.cloud} region ${bucket.region}, which the region table does not know: residency cannot be verified`,
      remedy,
      ev,
    );
  }
  const decision = countryAllowed(country, cluster.jurisdiction, ctx);
  if (!decision.allowed) {
    return fail(
      `bucket ${bucket.name} is in ${country} (${bucket.cloud} ${bucket.region}), outside jurisdiction "${cluster.jurisdiction}"`,
      remedy,
      ev,
    );
  }
  return pass(
    `the latest backup (${latest.value.name}) went to bucket ${bucket.name} in ${country}${exceptionNote(decision.via)}`,
    ev,
  );
};

const auditArchive: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['jurisdiction'])];
  if (!jurisdictionOf(cluster, ctx)) return notApplicable(UNASSIGNED_REASON, ev);
  const remedy = `configure jurisdictions.${cluster.jurisdiction}.evidence with a bucket or storage account in ${ctx.residency.countries(cluster.jurisdiction).join(', ')} and run audit collect`;
  const problem = openFindings(evidence, 'audit', ['archive-outside-jurisdiction']);
  if (problem) {
    ev.push(findingsItem(problem.record, problem.findings));
    return fail(problem.findings.map((f) => f.message).join('; '), remedy, ev);
  }
  const status = evidence.auditStatus;
  if (!status) {
    return unknown(
      'no audit status record (audit/status): audit collect has not archived this cluster yet',
      ev,
    );
  }
  const { location, archive } = status.value;
  ev.push(item(SRC.auditStatus, status.recordId, status.value.checkedAt, { archive, location }));
  if (location === null) {
    return fail(
      `archive ${archive} has no cloud location (a local directory): residency cannot be verified`,
      remedy,
      ev,
    );
  }
  const country = regionCountry(location.cloud, location.region);
  if (country === undefined) {
    return fail(
      `archive ${archive} is in ${location.cloud} region ${location.region}, which the region table does not know`,
      remedy,
      ev,
    );
  }
  const decision = countryAllowed(country, cluster.jurisdiction, ctx);
  if (!decision.allowed) {
    return fail(
      `archive ${archive} is in ${country} (${location.cloud} ${location.region}), outside jurisdiction "${cluster.jurisdiction}"`,
      remedy,
      ev,
    );
  }
  return pass(`archive ${archive} is in ${country}${exceptionNote(decision.via)}`, ev);
};

// ---------------------------------------------------------------------------------------
// security

const SECRETS_REMEDY: Record<RegionCloud, string> = {
  aws: 'associate a KMS key with the "secrets" resource (aws eks associate-encryption-config --encryption-config resources=secrets,provider={keyArn=<kms-key-arn>})',
  gcp: 'enable application-layer secrets encryption with a Cloud KMS key (gcloud container clusters update --database-encryption-key=<key-name>)',
  azure:
    'enable KMS etcd encryption with a Key Vault key (az aks update --enable-azure-keyvault-kms --azure-keyvault-kms-key-id <key-id>)',
};

const secretsEncryption: Evaluator = (cluster) => {
  const ev = [inventoryItem(cluster, ['cloud', 'secretsEncryptionKey'])];
  if (cluster.secretsEncryptionKey) {
    return pass(`Secrets are encrypted with customer-managed key ${cluster.secretsEncryptionKey}`, ev);
  }
  if (!isRegionCloud(cluster.cloud)) {
    return unknown('a kubeconfig context does not tell whether Secrets are envelope-encrypted', ev);
  }
  return fail(
    `no customer-managed key encrypts Secrets of ${cluster.name} (provider-managed keys only)`,
    `${SECRETS_REMEDY[cluster.cloud]} on ${cluster.name}`,
    ev,
  );
};

const ENDPOINT_REMEDY: Record<RegionCloud, string> = {
  aws: 'set endpointPrivateAccess=true and endpointPublicAccess=false (aws eks update-cluster-config --resources-vpc-config endpointPrivateAccess=true,endpointPublicAccess=false), or limit publicAccessCidrs',
  gcp: 'enable the private endpoint (gcloud container clusters update --enable-private-endpoint), or restrict it with master authorized networks',
  azure:
    'make it a private cluster (apiServerAccessProfile.enablePrivateCluster), or restrict the public endpoint with authorized IP ranges',
};

const privateEndpoint: Evaluator = (cluster) => {
  const ev = [inventoryItem(cluster, ['cloud', 'endpointAccess'])];
  switch (cluster.endpointAccess) {
    case 'private':
      return pass('the API endpoint is private only', ev);
    case 'public-and-private':
      return unknown(
        'the API endpoint is also public; whether authorised networks restrict it is not in the inventory',
        ev,
      );
    case 'public':
      return fail(
        `the API endpoint of ${cluster.name} is public only`,
        isRegionCloud(cluster.cloud)
          ? `${ENDPOINT_REMEDY[cluster.cloud]} on ${cluster.name}`
          : 'expose the API server only on a private network',
        ev,
      );
    case 'unknown':
      return unknown(`${cluster.cloud} discovery did not report how the API endpoint is reachable`, ev);
  }
};

// ---------------------------------------------------------------------------------------
// audit

const LOGGING_REMEDY: Record<RegionCloud, string> = {
  aws: 'enable the "audit" log type (aws eks update-cluster-config --logging \'{"clusterLogging":[{"types":["audit"],"enabled":true}]}\')',
  gcp: 'check that Fleetward can read the project\u2019s Cloud Audit Logs (roles/logging.viewer; Data Access entries need roles/logging.privateLogViewer) and that no log sink or exclusion diverts them, then run discover and audit collect again',
  azure:
    'add a diagnostic setting on the cluster sending the kube-audit and kube-audit-admin categories to the Log Analytics workspace Fleetward reads',
};

/**
 * What a cloud's control-plane audit log records whatever the cluster's settings say, where the
 * provider documents a fixed split; the evidence of `audit.logging-enabled` quotes it.
 *
 * GKE (cloud.google.com/kubernetes-engine/docs/how-to/audit-logging and
 * .../docs/concepts/audit-policy): the Kubernetes API server's entries go to the project's Cloud
 * Audit Logs. Admin Activity audit logs ("admin write": creating, changing and deleting
 * Kubernetes objects and cluster configuration) are always written and cannot be disabled; the
 * cluster's `loggingService` (even `none`) does not affect them. Data Access audit logs
 * (ADMIN_READ such as listing Pods, DATA_READ such as reading a Pod's logs, DATA_WRITE such as
 * updating Pod status) are written only when the project's IAM audit config enables them, which
 * discovery does not read.
 */
export const AUDIT_COVERAGE: Partial<
  Record<RegionCloud, { reference: string; captured: string; notVerified: string }>
> = {
  gcp: {
    reference: 'https://cloud.google.com/kubernetes-engine/docs/how-to/audit-logging',
    captured:
      'Admin Activity audit logs: every Kubernetes API write of objects and cluster configuration (create, update, patch, delete), always written to Cloud Audit Logs and impossible to disable, whatever the cluster\u2019s loggingService',
    notVerified:
      'Data Access audit logs: reads (ADMIN_READ such as listing Pods, DATA_READ such as reading Pod logs) and DATA_WRITE (such as updating Pod status), written only if the project\u2019s IAM audit config enables them for the Kubernetes Engine API; Fleetward does not read that config',
  },
};

const auditLogging: Evaluator = (cluster, evidence) => {
  const ev = [inventoryItem(cluster, ['cloud', 'auditLogging'])];
  const coverage = isRegionCloud(cluster.cloud) ? AUDIT_COVERAGE[cluster.cloud] : undefined;
  if (coverage) ev.push(item(SRC.auditCoverage, null, null, { ...coverage }));
  const remedy = isRegionCloud(cluster.cloud)
    ? `${LOGGING_REMEDY[cluster.cloud]} on ${cluster.name}`
    : 'configure an audit policy and log backend on the API server, and an audit log source Fleetward can read';
  if (coverage) {
    // The provider writes this part of the audit log unconditionally, so neither an inventory
    // `false` nor an `audit-logging-off` finding (both from records written before discovery
    // stopped reading GKE's loggingService as an audit switch) can mean there is no audit trail.
    return pass(
      `control-plane writes of ${cluster.name} are always audited (Admin Activity audit logs); reads are audited only if Data Access audit logs are enabled for the project, which is not checked`,
      ev,
    );
  }
  if (cluster.auditLogging === false) {
    return fail(`control-plane audit logging of ${cluster.name} is off (inventory)`, remedy, ev);
  }
  const off = openFindings(evidence, 'audit', ['audit-logging-off']);
  if (off) {
    ev.push(findingsItem(off.record, off.findings));
    return fail(off.findings.map((f) => f.message).join('; '), remedy, ev);
  }
  if (cluster.auditLogging === true) return pass('control-plane audit logging is on (inventory)', ev);
  const status = evidence.auditStatus;
  if (status) {
    ev.push(
      item(SRC.auditStatus, status.recordId, status.value.checkedAt, {
        archive: status.value.archive,
        lastEventAt: status.value.lastEventAt,
      }),
    );
    return pass('the audit job read the cluster\u2019s audit log at its last successful collection', ev);
  }
  return unknown(
    `${cluster.cloud} discovery does not report audit logging and there is no audit status record (audit/status)`,
    ev,
  );
};

const archiveCurrent: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['jurisdiction'])];
  const jurisdiction = jurisdictionOf(cluster, ctx);
  if (!jurisdiction) return notApplicable(UNASSIGNED_REASON, ev);
  const mutable = openFindings(evidence, 'audit', ['archive-not-immutable']);
  if (mutable) {
    ev.push(findingsItem(mutable.record, mutable.findings));
    return fail(
      mutable.findings.map((f) => f.message).join('; '),
      `enable S3 Object Lock (COMPLIANCE) default retention, a locked GCS retention policy or Azure version-level immutability of at least ${jurisdiction.audit.retentionDays} days on the archive of jurisdictions.${cluster.jurisdiction}.evidence`,
      ev,
    );
  }
  const status = evidence.auditStatus;
  if (!status) {
    return unknown(
      'no audit status record (audit/status): audit collect has not archived this cluster yet',
      ev,
    );
  }
  const s = status.value;
  ev.push(
    item(SRC.auditStatus, status.recordId, s.checkedAt, {
      archive: s.archive,
      compliantStorage: s.compliantStorage,
      retentionDays: s.retentionDays,
      checkedAt: s.checkedAt,
      lastEventAt: s.lastEventAt,
      headSeq: s.headSeq,
    }),
  );
  if (!s.compliantStorage) {
    return fail(
      `archive ${s.archive} is not write-once storage with enforced retention`,
      `move the archive to a bucket with S3 Object Lock (COMPLIANCE), a locked GCS retention policy or Azure version-level immutability of at least ${jurisdiction.audit.retentionDays} days (jurisdictions.${cluster.jurisdiction}.evidence)`,
      ev,
    );
  }
  const now = ctx.now.getTime();
  const collectedAge = now - Date.parse(s.checkedAt);
  const collectRemedy = `run audit collect for ${cluster.id} and fix whatever stops it (see the audit findings); it must run at least every ${AUDIT_MAX_AGE_MS / 3_600_000} h`;
  if (!(collectedAge <= AUDIT_MAX_AGE_MS)) {
    return fail(
      `the last successful audit collection was ${ageText(collectedAge)} ago, over ${AUDIT_MAX_AGE_MS / 3_600_000} h`,
      collectRemedy,
      ev,
    );
  }
  if (s.lastEventAt === null) {
    return fail(`archive ${s.archive} holds no audit event of the cluster yet`, collectRemedy, ev);
  }
  const eventAge = now - Date.parse(s.lastEventAt);
  if (!(eventAge <= AUDIT_MAX_AGE_MS)) {
    return fail(
      `the newest archived audit event is ${ageText(eventAge)} old, over ${AUDIT_MAX_AGE_MS / 3_600_000} h: the log source delivers nothing new`,
      `check that ${cluster.name} still sends audit logs to its log service, then run audit collect`,
      ev,
    );
  }
  return pass(
    `archive ${s.archive} is write-once (${s.retentionDays} days) and its newest event is ${ageText(eventAge)} old`,
    ev,
  );
};

const chainVerified: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['jurisdiction'])];
  if (!jurisdictionOf(cluster, ctx)) return notApplicable(UNASSIGNED_REASON, ev);
  const remedy = `run audit verify for ${cluster.id}; treat a missing or altered chunk as a possible security compromise and investigate the archive\u2019s access logs`;
  const conflict = openFindings(evidence, 'audit', ['audit-chain-conflict']);
  if (conflict) {
    ev.push(findingsItem(conflict.record, conflict.findings));
    return fail(conflict.findings.map((f) => f.message).join('; '), remedy, ev);
  }
  const verify = evidence.auditVerify;
  if (!verify) return unknown('no audit verify record (audit/verify): the chain was never verified', ev);
  const v = verify.value;
  ev.push(
    item(SRC.auditVerify, verify.recordId, v.verifiedAt, {
      ok: v.ok,
      chunks: v.chunks,
      events: v.events,
      firstProblem: v.firstProblem ?? null,
      error: v.error ?? null,
    }),
  );
  // An empty chain verifies vacuously: it proves nothing until something was archived.
  if (v.ok && v.chunks === 0)
    return unknown('audit verify found no archived chunk yet: there is no chain to vouch for', ev);
  if (v.ok) return pass(`the chain verified: ${v.chunks} chunks, ${v.events} events`, ev);
  if (v.firstProblem) {
    const p = v.firstProblem;
    return fail(
      `the chain breaks at seq ${p.seq} (${p.problem}${p.key ? ` ${p.key}` : ''}: ${p.detail})`,
      remedy,
      ev,
    );
  }
  return unknown(`audit verify could not read the archive${v.error ? `: ${v.error.message}` : ''}`, ev);
};

// ---------------------------------------------------------------------------------------
// backup

const backupRpo: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['jurisdiction'])];
  const jurisdiction = jurisdictionOf(cluster, ctx);
  if (!jurisdiction) return notApplicable(UNASSIGNED_REASON, ev);
  const targetSeconds = jurisdiction.backup.rpoHours * 3600;
  ev.push(configItem(`jurisdictions.${cluster.jurisdiction}.backup.rpoHours`, jurisdiction.backup.rpoHours));
  const status = evidence.backupStatus;
  const completed = evidence.backups
    .filter((b) => b.value.phase === 'Completed' && b.value.completedAt)
    .sort((a, b) => (a.value.completedAt! < b.value.completedAt! ? -1 : 1))
    .at(-1);
  if (!status && evidence.backups.length === 0) {
    return unknown(
      'no backup status record (backup-status) and no backup record (backups): the backup jobs have not run for this cluster',
      ev,
    );
  }
  if (status) {
    ev.push(
      item(SRC.backupStatus, status.recordId, status.value.checkedAt, {
        lastCompleted: status.value.lastCompleted,
        rpoSeconds: status.value.rpoSeconds,
        rpoTargetSeconds: status.value.rpoTargetSeconds,
        rpoOk: status.value.rpoOk,
      }),
    );
  }
  // The newest completion known to either record (a Backup may have completed after the status was written).
  const candidates: { name: string; completedAt: string }[] = [];
  if (status?.value.lastCompleted) candidates.push(status.value.lastCompleted);
  if (completed) {
    candidates.push({ name: completed.value.name, completedAt: completed.value.completedAt! });
    ev.push(
      item(SRC.backups, completed.recordId, completed.value.completedAt ?? null, {
        name: completed.value.name,
        phase: completed.value.phase,
        completedAt: completed.value.completedAt,
      }),
    );
  }
  const newest = candidates.sort((a, b) => (a.completedAt < b.completedAt ? -1 : 1)).at(-1);
  const remedy = `fix what stops backups of ${cluster.id} (see the backup and reconcile-backups findings) and make sure the backup job runs at least every ${jurisdiction.backup.rpoHours} h (jurisdictions.${cluster.jurisdiction}.backup.schedule)`;
  if (!newest) {
    const last = evidence.backups.at(-1);
    if (last) {
      ev.push(
        item(SRC.backups, last.recordId, last.value.createdAt || null, {
          name: last.value.name,
          phase: last.value.phase,
        }),
      );
    }
    return fail('no backup of the cluster has completed yet', remedy, ev);
  }
  const ageSeconds = Math.max(0, Math.round((ctx.now.getTime() - Date.parse(newest.completedAt)) / 1000));
  if (!(ageSeconds <= targetSeconds)) {
    return fail(
      `the last completed backup (${newest.name}) is ${ageText(ageSeconds * 1000)} old, over the RPO target of ${jurisdiction.backup.rpoHours} h`,
      remedy,
      ev,
    );
  }
  return pass(
    `the last completed backup (${newest.name}) is ${ageText(ageSeconds * 1000)} old, within ${jurisdiction.backup.rpoHours} h`,
    ev,
  );
};

const restoreDrill: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['jurisdiction'])];
  const jurisdiction = jurisdictionOf(cluster, ctx);
  if (!jurisdiction) return notApplicable(UNASSIGNED_REASON, ev);
  const { intervalDays, rtoMinutes } = jurisdiction.drill;
  ev.push(configItem(`jurisdictions.${cluster.jurisdiction}.drill`, { intervalDays, rtoMinutes }));
  const finished = evidence.drills
    .filter((d) => d.value.result !== null && d.value.finishedAt !== null)
    .sort((a, b) => (a.value.finishedAt! < b.value.finishedAt! ? -1 : 1));
  const last = finished.at(-1);
  if (!last) {
    const running = evidence.drills.at(-1);
    if (running) {
      ev.push(
        item(SRC.drills, running.recordId, running.value.startedAt, {
          id: running.value.id,
          phase: running.value.phase,
        }),
      );
    }
    return unknown(
      running
        ? `drill ${running.value.id} has not finished yet and no earlier drill is recorded`
        : 'no drill record (drills): restore-drill has not run for this cluster',
      ev,
    );
  }
  const d = last.value;
  ev.push(
    item(SRC.drills, last.recordId, d.finishedAt, {
      id: d.id,
      result: d.result,
      reasons: d.reasons,
      startedAt: d.startedAt,
      finishedAt: d.finishedAt,
      rtoSeconds: d.rtoSeconds,
      rtoTargetSeconds: d.rtoTargetSeconds,
      targetClusterId: d.targetClusterId,
    }),
  );
  const remedy = `run restore-drill for ${cluster.id} and fix what made it fail or run long (jurisdictions.${cluster.jurisdiction}.drill: every ${intervalDays} days, RTO ${rtoMinutes} min)`;
  const age = ctx.now.getTime() - Date.parse(d.startedAt);
  if (!(age <= intervalDays * DAY_MS)) {
    return fail(
      `the last finished drill (${d.id}) started ${ageText(age)} ago, over the ${intervalDays}-day interval`,
      remedy,
      ev,
    );
  }
  if (d.result === 'fail') {
    return fail(
      `the last drill (${d.id}) failed: ${d.reasons.join('; ') || 'no reason recorded'}`,
      remedy,
      ev,
    );
  }
  if (d.rtoSeconds === null) {
    return unknown(`the last drill (${d.id}) passed but recorded no restore time`, ev);
  }
  const targetSeconds = rtoMinutes * 60;
  if (d.rtoSeconds > targetSeconds) {
    return fail(
      `the last drill (${d.id}) restored in ${Math.round(d.rtoSeconds / 60)} min, over the RTO target of ${rtoMinutes} min`,
      remedy,
      ev,
    );
  }
  return pass(
    `the last drill (${d.id}) passed ${ageText(age)} ago and restored in ${Math.round(d.rtoSeconds / 60)} min (target ${rtoMinutes} min)`,
    ev,
  );
};

// ---------------------------------------------------------------------------------------
// cost

const requiredTags: Evaluator = (cluster, evidence, ctx) => {
  const required = ctx.config.policies.tags.required;
  const keys = Object.keys(required);
  const ev: EvidenceItem[] = [configItem('policies.tags.required', keys)];
  if (keys.length === 0) return notApplicable('no required tags are configured (policies.tags.required)', ev);
  if (!isRegionCloud(cluster.cloud)) {
    return notApplicable('a kubeconfig cluster has no cloud resource to tag', ev);
  }
  const cloud = cluster.cloud;
  const remedy = (problems: string[]) =>
    `set ${problems.join(', ')} on ${cluster.cloud} cluster ${cluster.name} (policies.tags.required; run tags apply to write configured defaults)`;
  const plan = evidence.tagPlan;
  if (plan) {
    const p = plan.value.plan;
    const missing = p.findings.filter((f) => f.kind === 'missing-tag' || f.kind === 'invalid-tag');
    const defaults = p.changes.filter((c) => c.source === 'default' && c.before === null);
    ev.push(
      item(SRC.tagPlan, plan.recordId, plan.value.at, {
        findings: missing.map((f) => ({ kind: f.kind, key: f.key, message: f.message })),
        pendingDefaults: defaults.map((c) => c.key),
      }),
    );
    const problems = [
      ...missing.map((f) => f.message),
      ...defaults.map((c) => `${c.key}: missing (default "${c.after}" not written yet)`),
    ];
    if (problems.length > 0) {
      return fail(
        `required tags missing or invalid: ${problems.join('; ')}`,
        remedy([...missing.map((f) => f.key), ...defaults.map((c) => c.key)]),
        ev,
      );
    }
    return pass(`every required tag (${keys.join(', ')}) is present and valid (tag plan)`, ev);
  }
  // No tag plan yet: the tags discovery read are evidence too.
  ev.push(inventoryItem(cluster, ['tags']));
  const have = new Map(Object.entries(cluster.tags).map(([k, v]) => [comparableKey(cloud, k), v]));
  const problems: string[] = [];
  const bad: string[] = [];
  for (const [key, rule] of Object.entries(required)) {
    const value = have.get(comparableKey(cloud, key));
    if (value === undefined) {
      problems.push(`${key}: missing`);
      bad.push(key);
    } else if (
      (rule.values && !rule.values.includes(value)) ||
      (rule.pattern !== undefined && !new RegExp(`^(?:${rule.pattern})$`, 'u').test(value))
    ) {
      problems.push(`${key}: "${value}" is not allowed`);
      bad.push(key);
    }
  }
  if (problems.length > 0) {
    return fail(`required tags missing or invalid: ${problems.join('; ')}`, remedy(bad), ev);
  }
  return pass(`every required tag (${keys.join(', ')}) is present and valid (inventory)`, ev);
};

const SCOPE_WORD: Record<RegionCloud, string> = {
  aws: 'AWS account',
  gcp: 'GCP project',
  azure: 'Azure subscription',
};

const budgetCoverage: Evaluator = (cluster, evidence, ctx) => {
  if (!isRegionCloud(cluster.cloud)) {
    return notApplicable('a kubeconfig cluster has no account, project or subscription to budget', [
      inventoryItem(cluster, ['cloud']),
    ]);
  }
  const where = `${SCOPE_WORD[cluster.cloud]} ${cluster.scope}${
    cluster.cloud === 'azure' && cluster.resourceGroup ? ` (resource group ${cluster.resourceGroup})` : ''
  }`;
  const covering = ctx.config.budgets.filter((b) => covers(b, cluster));
  const ev: EvidenceItem[] = [
    inventoryItem(cluster, ['cloud', 'scope', 'resourceGroup']),
    configItem(
      'budgets',
      covering.map((b) => b.name),
    ),
  ];
  const addRemedy = `add a budget whose scope covers ${where} to budgets in fleet.yaml and run budgets apply`;
  if (covering.length === 0) {
    return fail(`no budget in fleet.yaml covers ${where}`, addRemedy, ev);
  }
  const missing = openFindings(evidence, 'budgets', ['budget-missing']);
  if (missing) ev.push(findingsItem(missing.record, missing.findings));
  const plan = evidence.budgetPlan;
  if (!plan) {
    return unknown(
      `budgets ${covering.map((b) => b.name).join(', ')} cover ${where} in fleet.yaml, but there is no budget plan (budgets/plan/latest) to confirm they exist`,
      ev,
    );
  }
  const p = plan.value;
  const pendingCreate = new Set(p.changes.filter((c) => c.action === 'create').map((c) => c.address));
  ev.push(
    item(SRC.budgetPlan, plan.recordId, p.at, {
      pendingCreates: [...pendingCreate],
      failures: p.failures.map((f) => ({
        cloud: f.cloud,
        address: f.address ?? null,
        message: f.error.message,
      })),
    }),
  );
  const existing = covering.filter((b) => !pendingCreate.has(budgetAddress(b)));
  const listFailed = p.failures.some((f) => f.cloud === cluster.cloud && f.address === undefined);
  if (listFailed) {
    return unknown(`the last budget plan could not list ${cluster.cloud} budgets`, ev);
  }
  if (existing.length === 0) {
    return fail(
      `budgets ${covering.map((b) => b.name).join(', ')} cover ${where} in fleet.yaml but were not created yet (last plan ${p.at})`,
      `run budgets apply to create ${covering.map((b) => `fleetward-${b.name}`).join(', ')}`,
      ev,
    );
  }
  return pass(`budget ${existing.map((b) => b.name).join(', ')} covers ${where}`, ev);
};

// ---------------------------------------------------------------------------------------
// lifecycle

const k8sSupport: Evaluator = (cluster, _evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['cloud', 'kubernetesVersion'])];
  if (!isRegionCloud(cluster.cloud)) {
    return notApplicable('a kubeconfig cluster has no provider support calendar', ev);
  }
  if (!cluster.kubernetesVersion) {
    return unknown('discovery did not report the cluster\u2019s Kubernetes version', ev);
  }
  const s = supportStatus(cluster.cloud, cluster.kubernetesVersion, ctx.now);
  ev.push(
    item(SRC.k8sSupport, null, s.asOf, {
      minor: s.minor,
      standardSupportEnd: s.standardSupportEnd,
      source: s.source,
    }),
  );
  switch (s.status) {
    case 'supported':
      return pass(`${s.minor} is in standard support until ${s.standardSupportEnd}`, ev);
    case 'ended': {
      const target = oldestSupportedMinor(cluster.cloud, ctx.now);
      return fail(
        `standard support of ${s.minor} on ${cluster.cloud} ended on ${s.standardSupportEnd}`,
        `upgrade the control plane of ${cluster.name} (then its nodes) to ${target ? `${target} or later` : 'a minor version in standard support'}`,
        ev,
      );
    }
    case 'unknown-version':
      return unknown(
        `version ${cluster.kubernetesVersion} is not in the ${cluster.cloud} support calendar (as of ${s.asOf}); update shared/compliance/k8s-support.ts`,
        ev,
      );
  }
};

/**
 * Provider security bulletins, re-checked against the cluster's version now: a bulletin finding
 * counts while the inventory version is still affected (in a listed minor, below its patched
 * version), so an upgrade closes it without the record being deleted. A GKE cluster without any
 * bulletin record is `unknown`, never `pass`: GKE sends bulletins only when the cluster's
 * notification config publishes them to a topic pushed to Fleetward, which Fleetward cannot
 * see, so silence is not evidence. A cluster that did receive bulletins, all patched in its
 * version, passes: the intake demonstrably reaches it.
 */
const securityBulletins: Evaluator = (cluster, evidence, ctx) => {
  const ev: EvidenceItem[] = [inventoryItem(cluster, ['cloud', 'kubernetesVersion'])];
  if (cluster.cloud !== 'gcp') {
    return notApplicable(
      cluster.cloud === 'kubeconfig'
        ? 'a kubeconfig cluster has no provider that publishes security bulletins for it'
        : 'only GKE publishes provider security bulletins per cluster, as cluster notifications Fleetward receives; ' +
            `${cluster.cloud === 'aws' ? 'EKS' : 'AKS'} sends no such notification`,
      ev,
    );
  }
  const record = evidence.findings[SECURITY_BULLETIN_JOB];
  const recorded = (record?.value ?? []).filter(
    (f): f is BulletinFinding => f.kind === SECURITY_BULLETIN_KIND,
  );
  if (!record || recorded.length === 0) {
    const intake = ctx.config.events?.gcp !== undefined;
    ev.push(
      item(SRC.findings, null, null, { securityBulletins: 0 }),
      configItem('events.gcp', intake ? 'configured' : null),
    );
    return unknown(
      intake
        ? 'no security bulletin is recorded for the cluster, but Fleetward cannot tell whether it receives the ' +
            'cluster\u2019s bulletins (GKE sends them only when the cluster\u2019s notification config publishes ' +
            'SecurityBulletinEvent to a Pub/Sub topic pushed to Fleetward): no bulletin received is not evidence ' +
            'that none applies'
        : 'no security bulletin is recorded for the cluster, and events.gcp is not configured, so Fleetward ' +
            'receives no GKE cluster notifications: no bulletin received is not evidence that none applies',
      ev,
    );
  }
  const version = cluster.kubernetesVersion;
  const readable = version !== null && isReadableVersion(version);
  // A finding recorded without the bulletin's versions cannot be re-checked: it stays open.
  const affectedNow = (f: BulletinFinding): boolean | null =>
    f.bulletin === undefined ? null : readable ? isAffected(version!, f.bulletin) : null;
  const open = recorded.filter((f) => f.bulletin === undefined || affectedNow(f) === true);
  for (const f of recorded) {
    const facts = f.bulletin;
    ev.push(
      item(SRC.findings, record.recordId, f.at, {
        bulletinId: facts?.bulletinId ?? f.message.split(':')[0] ?? null,
        severity: facts?.severity ?? f.severity,
        cveIds: facts?.cveIds ?? null,
        clusterVersion: version,
        recordedVersion: facts?.version ?? null,
        patchedVersion: facts && readable ? (patchedVersionFor(version!, facts) ?? null) : null,
        suggestedUpgradeTarget: facts?.suggestedUpgradeTarget ?? null,
        bulletinUri: facts?.bulletinUri ?? null,
        manualStepsRequired: facts?.manualStepsRequired ?? null,
        affected: affectedNow(f),
        ...(facts === undefined ? { message: f.message } : {}),
      }),
    );
  }
  if (open.length > 0) {
    const describe = (f: BulletinFinding) => {
      const b = f.bulletin;
      if (!b)
        return `${f.message.split(':')[0]} (recorded without the bulletin\u2019s versions, so it cannot be re-checked against the version now)`;
      const patched = readable ? patchedVersionFor(version!, b) : undefined;
      return `${b.bulletinId} (${b.severity}${b.cveIds.length > 0 ? `, ${b.cveIds.join(', ')}` : ''}) affects ${version}${patched ? `, patched in ${patched}` : ', no patched version of its minor yet'}`;
    };
    const targets = [
      ...new Set(open.map((f) => f.bulletin?.suggestedUpgradeTarget).filter((t): t is string => !!t)),
    ];
    const patchedVersions = [
      ...new Set(
        open
          .map((f) => (f.bulletin && readable ? patchedVersionFor(version!, f.bulletin) : undefined))
          .filter((p): p is string => p !== undefined),
      ),
    ];
    const manual = open.some((f) => f.bulletin?.manualStepsRequired)
      ? '; then take the manual steps the bulletin names'
      : '';
    const to =
      targets.length > 0
        ? `${targets.length === 1 ? targets[0] : `the newest of ${targets.join(', ')}`}${patchedVersions.length > 0 ? ` (at least ${patchedVersions.join(', ')})` : ''}`
        : patchedVersions.length > 0
          ? `at least ${patchedVersions.join(', ')}`
          : 'a version the bulletin lists as patched';
    return fail(
      `open security bulletin${open.length > 1 ? 's' : ''}: ${open.map(describe).join('; ')}`,
      `upgrade the control plane of ${cluster.name} (then its nodes) to ${to}${manual}`,
      ev,
    );
  }
  if (!readable) {
    return unknown(
      `${recorded.map((f) => f.bulletin!.bulletinId).join(', ')} cannot be re-checked: discovery did not report a readable Kubernetes version of the cluster (${version ?? 'none'})`,
      ev,
    );
  }
  return pass(
    `every security bulletin received for the cluster (${recorded.map((f) => f.bulletin!.bulletinId).join(', ')}) is patched in its version ${version}`,
    ev,
  );
};

/** The evaluator of each control id; the catalogue order decides the result order. */
const EVALUATORS: Readonly<Record<string, Evaluator>> = {
  'residency.cluster-region': clusterRegion,
  'residency.backup-storage': backupStorage,
  'residency.audit-archive': auditArchive,
  'security.secrets-encryption': secretsEncryption,
  'security.private-endpoint': privateEndpoint,
  'audit.logging-enabled': auditLogging,
  'audit.archive-current': archiveCurrent,
  'audit.chain-verified': chainVerified,
  'backup.rpo': backupRpo,
  'backup.restore-drill': restoreDrill,
  'cost.required-tags': requiredTags,
  'cost.budget-coverage': budgetCoverage,
  'lifecycle.k8s-standard-support': k8sSupport,
  'lifecycle.security-bulletins': securityBulletins,
};

/** The control ids that have an evaluator (the catalogue test checks every control has one). */
export const EVALUATED_CONTROLS: readonly string[] = Object.keys(EVALUATORS);

/**
 * Evaluates every control of the catalogue for one cluster: one result per control, in
 * catalogue order. See the module comment for what `unknown`, `fail` and `not-applicable`
 * mean. A control without an evaluator (a catalogue ahead of this code) is `unknown`.
 */
export function evaluateCluster(
  cluster: Cluster,
  evidence: ClusterEvidence,
  ctx: EvaluationContext,
): ControlResult[] {
  return CONTROLS.map((control) => {
    const evaluator = EVALUATORS[control.id];
    const outcome: Outcome = evaluator
      ? evaluator(cluster, evidence, ctx)
      : unknown('this version of Fleetward has no rule for the control', []);
    return { control: control.id, ...outcome };
  });
}

/** How many results have each status (every status present, zero when absent). */
export function countStatuses(results: readonly { status: ControlStatus }[]): StatusCounts {
  const counts: StatusCounts = { pass: 0, fail: 0, 'not-applicable': 0, unknown: 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}
