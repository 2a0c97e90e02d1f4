/**
 * The control catalogue: what Fleetward checks per cluster, why, and which provisions of
 * which law each control supports. It is data, not code: `evaluate.ts` holds the rules,
 * this file holds the words an auditor reads, and every snapshot embeds the catalogue it
 * was evaluated against together with {@link CATALOGUE_VERSION}.
 *
 * Versioning (`YYYY.MM.PATCH`, calendar-based):
 *  - bump PATCH for wording only (a title, rationale or remedy reads better; a citation's
 *    title is corrected without changing what it cites);
 *  - bump to the current `YYYY.MM.0` when a control is added or removed, an id changes, a
 *    severity changes, a reference is added or removed, or the evaluation rules of a
 *    control change meaning (snapshots of different versions are then not comparable
 *    control by control, and the diff of two snapshots says so).
 * Ids are stable forever: a control that changes meaning gets a new id, never a reused one.
 *
 * Citations name the provision as the law numbers it and its short title. Only provisions
 * the control really supports are cited; the cost controls (tags, budgets) support
 * accountability and records of processing only indirectly (they make every cluster that
 * may process personal data visible and owned), and their rationale says so.
 */
import type { Control, LawReference } from './schema.ts';

/** Version of the catalogue (not of the snapshot format); see the module comment for when to bump it. */
export const CATALOGUE_VERSION = '2026.12.0';

// The provisions cited, once each, so two controls citing the same provision cite it identically.
const GDPR = {
  art5_1f: { law: 'gdpr', cite: 'Art. 5(1)(f)', title: 'Integrity and confidentiality' },
  art5_2: { law: 'gdpr', cite: 'Art. 5(2)', title: 'Accountability' },
  art25: { law: 'gdpr', cite: 'Art. 25', title: 'Data protection by design and by default' },
  art30: { law: 'gdpr', cite: 'Art. 30', title: 'Records of processing activities' },
  art32_1a: {
    law: 'gdpr',
    cite: 'Art. 32(1)(a)',
    title: 'Security of processing: pseudonymisation and encryption of personal data',
  },
  art32_1b: {
    law: 'gdpr',
    cite: 'Art. 32(1)(b)',
    title:
      'Security of processing: ongoing confidentiality, integrity, availability and resilience of processing systems',
  },
  art32_1c: {
    law: 'gdpr',
    cite: 'Art. 32(1)(c)',
    title: 'Security of processing: ability to restore availability and access in a timely manner',
  },
  art32_1d: {
    law: 'gdpr',
    cite: 'Art. 32(1)(d)',
    title: 'Security of processing: regularly testing, assessing and evaluating the measures',
  },
  art33: {
    law: 'gdpr',
    cite: 'Art. 33',
    title: 'Notification of a personal data breach to the supervisory authority',
  },
  art44: { law: 'gdpr', cite: 'Art. 44', title: 'General principle for transfers' },
} as const satisfies Record<string, LawReference>;

const DPDP = {
  s8_1: {
    law: 'dpdp',
    cite: 's. 8(1)',
    title: 'Data Fiduciary responsible for compliance, including processing by a Data Processor',
  },
  s8_4: {
    law: 'dpdp',
    cite: 's. 8(4)',
    title: 'Appropriate technical and organisational measures',
  },
  s8_5: {
    law: 'dpdp',
    cite: 's. 8(5)',
    title: 'Reasonable security safeguards to prevent personal data breach',
  },
  s8_6: {
    law: 'dpdp',
    cite: 's. 8(6)',
    title: 'Intimation of personal data breach to the Board and affected Data Principals',
  },
  s16: { law: 'dpdp', cite: 's. 16', title: 'Processing of personal data outside India' },
} as const satisfies Record<string, LawReference>;

const POPIA = {
  s17: { law: 'popia', cite: 's. 17', title: 'Documentation' },
  s19_1: {
    law: 'popia',
    cite: 's. 19(1)',
    title: 'Security safeguards: appropriate technical and organisational measures',
  },
  s19_2: {
    law: 'popia',
    cite: 's. 19(2)',
    title: 'Security safeguards: identify risks, maintain safeguards, verify and update them',
  },
  s22: { law: 'popia', cite: 's. 22', title: 'Notification of security compromises' },
  s72: {
    law: 'popia',
    cite: 's. 72',
    title: 'Transfers of personal information outside Republic',
  },
} as const satisfies Record<string, LawReference>;

const KE_DPA = {
  s25: { law: 'ke-dpa', cite: 's. 25', title: 'Principles of data protection' },
  s25h: {
    law: 'ke-dpa',
    cite: 's. 25(h)',
    title: 'Principle: no transfer outside Kenya without adequate safeguards or consent',
  },
  s41: { law: 'ke-dpa', cite: 's. 41', title: 'Data protection by design or by default' },
  s43: { law: 'ke-dpa', cite: 's. 43', title: 'Notification and communication of breach' },
  s48: { law: 'ke-dpa', cite: 's. 48', title: 'Conditions for transfer out of Kenya' },
  s49: {
    law: 'ke-dpa',
    cite: 's. 49',
    title: 'Safeguards prior to transfer of personal data out of Kenya',
  },
  s50: {
    law: 'ke-dpa',
    cite: 's. 50',
    title: 'Processing through a data server or data centre in Kenya',
  },
} as const satisfies Record<string, LawReference>;

/** Every provision a residency (transfer) control cites. */
const TRANSFERS: LawReference[] = [
  GDPR.art44,
  DPDP.s16,
  POPIA.s72,
  KE_DPA.s25h,
  KE_DPA.s48,
  KE_DPA.s49,
  KE_DPA.s50,
];

/** Evidence source names (the `source` of evidence items and the `evidence` of controls). */
export const EVIDENCE_SOURCES = {
  inventory: 'inventory',
  config: 'config',
  backupStatus: 'backup-status',
  backups: 'backups',
  drills: 'drills',
  auditStatus: 'audit-status',
  auditVerify: 'audit-verify',
  findings: 'findings',
  tagPlan: 'tags-plan',
  budgetPlan: 'budgets-plan',
  k8sSupport: 'k8s-support',
  auditCoverage: 'audit-coverage',
} as const;
const E = EVIDENCE_SOURCES;

/** The controls, in the order every snapshot lists them. */
export const CONTROLS: readonly Control[] = Object.freeze([
  {
    id: 'residency.cluster-region',
    title: 'Cluster runs in a region of its jurisdiction',
    rationale:
      'A cluster processes the personal data it holds where it runs. Its region must be in a country of the ' +
      'jurisdiction whose law governs that data; a region in no configured jurisdiction means the data has no ' +
      'lawful home Fleetward can vouch for, and Fleetward refuses to back up or archive it.',
    severity: 'critical',
    references: [...TRANSFERS],
    evidence: [E.inventory, E.config],
    remedy:
      'Move the workload to a cluster in a region of a configured jurisdiction, or add the region\u2019s country to ' +
      'a jurisdiction in fleet.yaml (jurisdictions.<id>.countries) when that law really governs the data.',
  },
  {
    id: 'residency.backup-storage',
    title: 'Backups are stored in the jurisdiction',
    rationale:
      'Velero backups copy every resource and volume snapshot of the cluster to object storage; a bucket ' +
      'outside the jurisdiction is a transfer of personal data abroad unless a live, approved exception covers ' +
      'its country.',
    severity: 'critical',
    references: [...TRANSFERS],
    evidence: [E.backups, E.findings, E.config],
    remedy:
      'Point the Velero BackupStorageLocation at a bucket in a region of the jurisdiction (or record an ' +
      'approved, dated exception in jurisdictions.<id>.exceptions), then run a new backup.',
  },
  {
    id: 'residency.audit-archive',
    title: 'Audit archive is stored in the jurisdiction',
    rationale:
      'Control-plane audit events name users, service accounts and objects, often personal data themselves; ' +
      'their archive is bound by the same transfer rules as the data they describe.',
    severity: 'critical',
    references: [...TRANSFERS],
    evidence: [E.auditStatus, E.findings, E.config],
    remedy:
      'Configure jurisdictions.<id>.evidence with a bucket or storage account in a region of the jurisdiction ' +
      'and run audit collect.',
  },
  {
    id: 'security.secrets-encryption',
    title: 'Kubernetes Secrets are encrypted with a customer-managed key',
    rationale:
      'Envelope encryption of Secrets with a key the organisation controls (AWS KMS, Cloud KMS, Azure Key ' +
      'Vault) protects credentials to personal data stores if etcd or its backups leak, and lets the key be ' +
      'revoked independently of the provider.',
    severity: 'high',
    references: [GDPR.art32_1a, GDPR.art5_1f, DPDP.s8_5, POPIA.s19_1, KE_DPA.s41],
    evidence: [E.inventory],
    remedy:
      'Enable envelope encryption of Secrets with a customer-managed key: EKS encryption config for the ' +
      '"secrets" resource, GKE application-layer secrets encryption, AKS KMS etcd encryption.',
  },
  {
    id: 'security.private-endpoint',
    title: 'Kubernetes API endpoint is not publicly reachable',
    rationale:
      'A public API server endpoint exposes the control plane of every workload processing personal data to ' +
      'the internet; a private endpoint (or one restricted to authorised networks) removes that attack surface.',
    severity: 'high',
    references: [GDPR.art32_1b, GDPR.art25, DPDP.s8_5, POPIA.s19_1, KE_DPA.s41],
    evidence: [E.inventory],
    remedy:
      'Enable the private endpoint and disable public access (EKS endpointPublicAccess=false, GKE private ' +
      'endpoint, AKS private cluster), or restrict the public endpoint to authorised networks.',
  },
  {
    id: 'audit.logging-enabled',
    title: 'Control-plane audit logging is on',
    rationale:
      'Without the API server audit log no one can tell who read or changed which Secret, ConfigMap or volume: ' +
      'a breach could be neither detected, scoped nor reported within the statutory deadlines.',
    severity: 'high',
    references: [
      GDPR.art5_2,
      GDPR.art32_1b,
      GDPR.art33,
      DPDP.s8_5,
      DPDP.s8_6,
      POPIA.s19_2,
      POPIA.s22,
      KE_DPA.s41,
      KE_DPA.s43,
    ],
    evidence: [E.inventory, E.auditCoverage, E.auditStatus, E.findings],
    remedy:
      'Send control-plane audit logs to the cloud\u2019s log service: EKS cluster logging type "audit", AKS ' +
      'diagnostic setting with the kube-audit categories. GKE always writes Admin Activity audit logs (whatever ' +
      'its loggingService); to record reads too, enable Data Access audit logs for the Kubernetes Engine API.',
  },
  {
    id: 'audit.archive-current',
    title: 'Audit archive is current and write-once',
    rationale:
      'Audit evidence only proves something if it is complete up to now and cannot be altered or deleted ' +
      'before its retention ends: the archive must have collected recently and sit in storage with an ' +
      'enforced retention lock.',
    severity: 'high',
    references: [GDPR.art5_1f, GDPR.art5_2, DPDP.s8_4, POPIA.s17, POPIA.s19_2, KE_DPA.s41],
    evidence: [E.auditStatus, E.findings],
    remedy:
      'Run audit collect on its schedule, and store the archive with S3 Object Lock in COMPLIANCE mode, a ' +
      'locked GCS retention policy, or Azure version-level immutability, for at least the retention period.',
  },
  {
    id: 'audit.chain-verified',
    title: 'Audit archive hash chain verifies',
    rationale:
      'Each archived chunk names the SHA-256 of its predecessor; a chain that verifies end to end shows no ' +
      'chunk was removed, replaced or re-versioned since it was written.',
    severity: 'high',
    references: [GDPR.art5_1f, GDPR.art5_2, DPDP.s8_4, POPIA.s19_2, KE_DPA.s41],
    evidence: [E.auditVerify, E.findings],
    remedy:
      'Run audit verify; if it names a missing or altered chunk, treat it as a possible security compromise ' +
      'and investigate the archive bucket\u2019s access logs.',
  },
  {
    id: 'backup.rpo',
    title: 'Last good backup is within the RPO target',
    rationale:
      'The recovery point objective bounds how much personal data an incident can destroy; a completed ' +
      'backup younger than the jurisdiction\u2019s target keeps that promise.',
    severity: 'high',
    references: [GDPR.art32_1c, GDPR.art32_1b, DPDP.s8_5, POPIA.s19_1, KE_DPA.s41],
    evidence: [E.backupStatus, E.backups, E.config],
    remedy:
      'Fix what makes backups fail (see the backup findings), make sure the backup job runs on its schedule, ' +
      'and check jurisdictions.<id>.backup.rpoHours.',
  },
  {
    id: 'backup.restore-drill',
    title: 'Restore drill passed recently and within the RTO target',
    rationale:
      'A backup that was never restored is a hope, not a safeguard: a regular restore drill tests that data ' +
      'can be brought back, and how fast, against the recovery time objective.',
    severity: 'medium',
    references: [GDPR.art32_1c, GDPR.art32_1d, DPDP.s8_4, POPIA.s19_2, KE_DPA.s41],
    evidence: [E.drills, E.config],
    remedy:
      'Run restore-drill for the cluster and fix what made the last drill fail or run over the RTO ' +
      '(jurisdictions.<id>.drill.intervalDays and rtoMinutes).',
  },
  {
    id: 'cost.required-tags',
    title: 'Required ownership tags are present',
    rationale:
      'Owner and cost-centre tags tie each cluster to an accountable team and purpose; they support (without ' +
      'replacing) the records of processing and the documentation the laws require. A cluster no one owns is ' +
      'one no one answers for.',
    severity: 'low',
    references: [GDPR.art5_2, GDPR.art30, DPDP.s8_1, POPIA.s17, KE_DPA.s25],
    evidence: [E.tagPlan, E.inventory, E.config],
    remedy: 'Add the missing or invalid tags (policies.tags.required) on the cluster resource.',
  },
  {
    id: 'cost.budget-coverage',
    title: 'A budget covers the cluster\u2019s account, project or subscription',
    rationale:
      'A budget with alerts on every account, project or subscription makes unplanned resources, including ' +
      'shadow clusters that may process personal data, visible quickly; it supports accountability only ' +
      'indirectly.',
    severity: 'low',
    references: [GDPR.art5_2, GDPR.art30, DPDP.s8_1, POPIA.s17, KE_DPA.s25],
    evidence: [E.config, E.budgetPlan, E.findings],
    remedy: 'Add a budget whose scope covers the cluster to budgets in fleet.yaml and run budgets apply.',
  },
  {
    id: 'lifecycle.k8s-standard-support',
    title: 'Kubernetes version is in the provider\u2019s standard support',
    rationale:
      'Past the end of standard support a minor version gets no new security fixes from the community and ' +
      'only limited ones from the provider; keeping current is part of keeping safeguards up to date against ' +
      'new risks.',
    severity: 'medium',
    references: [GDPR.art32_1b, GDPR.art32_1d, DPDP.s8_5, POPIA.s19_2, KE_DPA.s41],
    evidence: [E.inventory, E.k8sSupport],
    remedy: 'Upgrade the control plane (then the nodes) to a minor version in standard support.',
  },
  {
    id: 'lifecycle.security-bulletins',
    title: 'No open provider security bulletin affects the cluster\u2019s version',
    rationale:
      'A provider security bulletin names a vulnerability (CVEs) in the Kubernetes versions it affects and the ' +
      'first patched version of each; a cluster still below that version runs a known weakness against which ' +
      'a safeguard exists. Applying it is keeping safeguards up to date against a newly identified risk. GKE ' +
      'publishes bulletins per cluster as cluster notifications; a cluster Fleetward received none for is not ' +
      'evidence that none applies.',
    severity: 'high',
    references: [GDPR.art32_1b, DPDP.s8_5, POPIA.s19_2, KE_DPA.s41],
    evidence: [E.inventory, E.findings, E.config],
    remedy:
      'Upgrade the control plane (then the nodes) to the bulletin\u2019s suggested upgrade target or a patched ' +
      'version of its minor, and take the manual steps the bulletin names.',
  },
] satisfies Control[]);

/** The ids of {@link CONTROLS}, in catalogue order. */
export const CONTROL_IDS = CONTROLS.map((c) => c.id);
