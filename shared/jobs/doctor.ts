/**
 * `fleetward doctor`: checks, for every configured scope, that a run has the access it needs,
 * and names the exact permission (or setting) to add when it has not.
 *
 * Checks (each a row of the report):
 * - per discovery scope (AWS account/region, GCP project, Azure subscription, kubeconfig
 *   context): `credentials` obtainable and `clusters listable` (one discovery pass);
 * - per audited scope (one cluster of each cloud/scope/region, the fleet's audit logs are read
 *   the same way for every cluster of a scope): `audit logs readable` (a read of the last
 *   minutes); a cluster that sends no audit log is a finding, not a failure;
 * - per jurisdiction's evidence store: `evidence write-once and in jurisdiction` (the same
 *   `location()` + residency guard + `assertImmutable` the audit and snapshot jobs run first);
 * - per cluster in a jurisdiction: `velero reachable` (Kubernetes API reachable and Velero's
 *   preflight readable); Velero not installed or a storage location outside the jurisdiction
 *   are findings;
 * - per Slack webhook a route uses: `slack route resolvable` (the secret is read, never shown).
 *
 * A failed check names the permissions of the calls that failed, from the grants table the
 * caller passes (shared/clouds/grants.ts; jobs see ports and data only). The exit code is
 * 0 when every check holds, 1 otherwise; findings never fail it.
 */
import type { FleetConfig } from '../config/schema.ts';
import type { CloudId, Cluster, DiscoveryScope, RegionCloud } from '../model.ts';
import type {
  ArchiveStore,
  AuditLogSource,
  BucketLocator,
  Clock,
  ClusterDiscovery,
  KubeAccess,
  Log,
} from '../ports.ts';
import type { Residency } from '../residency/index.ts';
import { createLimiter } from '../runtime/concurrency.ts';
import { errorInfo, ResidencyError } from '../runtime/errors.ts';
import { TABLE_WIDTH, wrapHanging } from '../runtime/table.ts';
import { type BucketCache, preflight } from '../velero/preflight.ts';
import { place } from './discover.ts';

/** One row of the provider permission table (shared/clouds/permissions.ts), as data. */
export interface DoctorGrant {
  provider: string;
  holder: string;
  permission: string;
  calls: readonly string[];
  why: string;
}

/** What the doctor needs: the same ports the jobs use, plus the grants table to name permissions. */
export interface DoctorDeps {
  config: FleetConfig;
  discoveries: readonly ClusterDiscovery[];
  kube: KubeAccess;
  buckets: BucketLocator;
  residency: Residency;
  audit: { for(cluster: Cluster): AuditLogSource | undefined };
  evidence: { all(jurisdiction: string): Promise<ArchiveStore[]> };
  /** Reads one secret (Slack webhook); the value is only checked for presence, never kept. */
  readSecret(ref: { from: string; name: string }): Promise<string>;
  grants: readonly DoctorGrant[];
  logger: Log;
  clock: Clock;
  /** Parallel checks (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
  /** Called as each stage starts (1 of 5 ...), with the checks made so far. */
  onProgress?: (stage: number, stages: number, name: string, checks: number) => void;
}

export type CheckName =
  | 'credentials'
  | 'clusters listable'
  | 'audit logs readable'
  | 'evidence write-once and in jurisdiction'
  | 'velero reachable'
  | 'slack route resolvable';

export interface DoctorCheck {
  /** What was checked: `aws 111111111111/eu-west-1`, `cluster gcp/p/europe-west3/x`, `evidence eu aws:bucket`. */
  target: string;
  check: CheckName;
  status: 'ok' | 'fail' | 'skip';
  /** Why it failed (or was skipped). */
  detail?: string;
  /** What to add: `<permission> (<where>): <why>`, or the setting to change. */
  fix?: string[];
}

export interface DoctorFinding {
  target: string;
  message: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: DoctorCheck[];
  /** Posture seen on the way (audit logging off, Velero not installed): listed, never failing. */
  findings: DoctorFinding[];
}

/** The calls each check makes, per provider (the grants of the failing one are named). */
const CALLS: Record<string, Partial<Record<string, readonly string[]>>> = {
  credentials: {
    aws: ['sts:AssumeRole'],
    gcp: ['iamcredentials:generateAccessToken'],
  },
  clusters: {
    aws: ['eks:ListClusters', 'eks:DescribeCluster', 'ec2:DescribeRegions'],
    gcp: ['container:ListClusters'],
    azure: ['arm:managedClusters.list'],
    kubernetes: ['get /version'],
  },
  audit: {
    aws: ['sts:AssumeRole', 'eks:DescribeCluster', 'logs:FilterLogEvents'],
    gcp: ['logging:entries.list'],
    azure: ['arm:diagnosticSettings.list', 'loganalytics:query'],
  },
  evidence: {
    aws: ['s3:GetBucketLocation', 's3:GetObjectLockConfiguration', 's3:GetBucketVersioning'],
    gcp: ['storage:buckets.get'],
    azure: ['arm:storageAccounts.getProperties', 'arm:blobContainers.get'],
  },
  kube: {
    aws: ['sts:AssumeRole', 'eks:DescribeCluster'],
    gcp: ['container:GetCluster'],
    azure: ['arm:managedClusters.listClusterUserCredentials'],
  },
  velero: {
    kubernetes: [
      'get apiextensions.k8s.io/customresourcedefinitions',
      'get apps/deployments',
      'list velero.io/backupstoragelocations',
    ],
  },
  bucket: {
    aws: ['s3:GetBucketLocation'],
    gcp: ['storage:buckets.get'],
    azure: ['arm:storageAccounts.getProperties'],
  },
  secrets: {
    aws: ['ssm:GetParameter', 'secretsmanager:GetSecretValue'],
  },
};

/** Where a `member` grant of each provider is held, in an approver's words. */
const MEMBER_HOLDER: Record<string, string> = {
  aws: 'the member account reader role',
  gcp: 'the Fleetward role in the project',
  azure: 'the Fleetward role on the subscription',
  kubernetes: "the cluster's Fleetward ClusterRole",
};

const DENIED =
  /access ?denied|accessdenied|forbidden|not authori[sz]ed|authorizationfailed|permission|does not have authorization|unauthori[sz]ed|insufficient/i;

/** Whether an error says the caller lacks a permission (rather than a network or config problem). */
export function isDenied(error: { status?: number | undefined; message: string }): boolean {
  return error.status === 401 || error.status === 403 || DENIED.test(error.message);
}

const providerOf = (cloud: CloudId): string => (cloud === 'kubeconfig' ? 'kubernetes' : cloud);

/**
 * A Kubernetes client operation (`list velero.io/v1 BackupStorageLocation`) as the grants
 * table names the call (`list velero.io/backupstoragelocations`).
 */
export function kubeCallOf(operation: string): string | undefined {
  const m = /^(read|list|create|delete) (\S+) (\w+)$/.exec(operation);
  if (!m) return undefined;
  const [, verb, apiVersion, kind] = m as unknown as [string, string, string, string];
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const resource = `${kind.toLowerCase()}s`;
  return `${verb === 'read' ? 'get' : verb} ${group ? `${group}/` : ''}${resource}`;
}

/**
 * The calls of `candidates` an error names (its `operation`, else its message), else all of
 * them: `eks:ListClusters` is named by `operation: 'ListClusters'` or by "ListClusters" in the text.
 */
export function failedCalls(
  candidates: readonly string[],
  error: { operation?: string | undefined; message: string },
): string[] {
  const op = error.operation ? (kubeCallOf(error.operation) ?? error.operation) : undefined;
  const part = (call: string) => (call.includes(' ') ? call : call.slice(call.indexOf(':') + 1));
  const norm = (s: string) => s.toLowerCase();
  const byOp = op
    ? candidates.filter((c) => {
        const p = norm(part(c));
        const o = norm(op);
        return c === op || p === o || o.endsWith(`.${p}`) || o.endsWith(`:${p}`);
      })
    : [];
  if (byOp.length > 0) return byOp;
  const words = new Set(error.message.split(/[^A-Za-z0-9_./-]+/).map(norm));
  const byText = candidates.filter((c) => words.has(norm(part(c))) || error.message.includes(c));
  return byText.length > 0 ? byText : [...candidates];
}

/**
 * The fix lines for a denied call: each permission whose grant declares one of `calls`
 * (`eks:ListClusters (the member account reader role): list the EKS clusters ...`).
 */
export function permissionFixes(
  grants: readonly DoctorGrant[],
  provider: string,
  calls: readonly string[],
): string[] {
  const out = new Map<string, string>();
  for (const g of grants) {
    if (g.provider !== provider || !g.calls.some((c) => calls.includes(c))) continue;
    const where =
      g.holder === 'member' ? (MEMBER_HOLDER[provider] ?? 'the member identity') : 'the function role';
    const key = `${g.permission} (${where})`;
    if (!out.has(key)) out.set(key, `${key}: ${g.why}`);
  }
  return [...out.values()];
}

/** A failed row: the permissions of the failing calls when access was denied, else the error. */
function failure(
  deps: DoctorDeps,
  target: string,
  check: CheckName,
  provider: string,
  callSet: string,
  error: unknown,
): DoctorCheck {
  // Discovery reports failures as `{ name, message, status }` already.
  const given = error as { name?: unknown; message?: unknown; status?: unknown } | null;
  const info =
    !(error instanceof Error) && typeof given?.message === 'string'
      ? {
          name: String(given.name ?? 'Error'),
          message: given.message,
          ...(typeof given.status === 'number' ? { status: given.status } : {}),
        }
      : errorInfo(error);
  const operation = (error as { operation?: unknown } | null)?.operation;
  const row: DoctorCheck = { target, check, status: 'fail', detail: info.message };
  const candidates = CALLS[callSet]?.[provider] ?? [];
  if (isDenied(info) && candidates.length > 0) {
    const calls = failedCalls(candidates, {
      operation: typeof operation === 'string' ? operation : undefined,
      message: info.message,
    });
    const fixes = permissionFixes(deps.grants, provider, calls);
    if (fixes.length > 0) row.fix = fixes.map((f) => `grant ${f}`);
  }
  return row;
}

const scopeLabel = (s: DiscoveryScope) => `${s.cloud} ${s.scope}${s.region ? `/${s.region}` : ''}`;

const CREDENTIAL = /assumerole|getaccesstoken|credential|token/i;

/** Runs every check; never throws for a failing scope (only an aborted signal rejects). */
export async function run(deps: DoctorDeps): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const findings: DoctorFinding[] = [];
  const limit = createLimiter(deps.concurrency ?? 8);
  const s = deps.signal ? { signal: deps.signal } : {};

  // 1. Credentials and cluster listing, per discovery scope.
  deps.onProgress?.(1, 5, 'credentials and cluster listing', checks.length);
  const outcomes = await Promise.all(deps.discoveries.map((d) => d.discover(s)));
  const clusters: Cluster[] = [];
  for (const outcome of outcomes) {
    for (const scope of outcome.completedScopes) {
      checks.push({ target: scopeLabel(scope), check: 'credentials', status: 'ok' });
      checks.push({ target: scopeLabel(scope), check: 'clusters listable', status: 'ok' });
    }
    for (const f of outcome.failures) {
      if (f.kind === 'unparseable') {
        findings.push({
          target: scopeLabel(f),
          message: `cluster ${f.cluster ?? ''} unparseable: ${f.error.message}`,
        });
        continue;
      }
      const provider = providerOf(f.cloud);
      const credentials = CREDENTIAL.test(`${f.error.name} ${f.error.message}`) && provider !== 'kubernetes';
      const error = { ...f.error, name: f.error.name };
      if (credentials) {
        checks.push(failure(deps, scopeLabel(f), 'credentials', provider, 'credentials', error));
        checks.push({
          target: scopeLabel(f),
          check: 'clusters listable',
          status: 'skip',
          detail: 'no credentials',
        });
      } else {
        checks.push({ target: scopeLabel(f), check: 'credentials', status: 'ok' });
        checks.push(failure(deps, scopeLabel(f), 'clusters listable', provider, 'clusters', error));
      }
    }
    for (const c of outcome.clusters) clusters.push(place(c, deps.residency));
  }
  clusters.sort((a, b) => a.id.localeCompare(b.id));

  // 2. Audit logs: one cluster per cloud, scope and region.
  deps.onProgress?.(2, 5, 'audit logs', checks.length);
  const sampled = new Map<string, Cluster>();
  for (const c of clusters) {
    if (c.cloud === 'kubeconfig') continue;
    const key = `${c.cloud} ${c.scope}/${c.region}`;
    if (!sampled.has(key)) sampled.set(key, c);
  }
  const now = deps.clock.now();
  await Promise.all(
    [...sampled].map(([target, cluster]) =>
      limit(async () => {
        const source = deps.audit.for(cluster);
        if (!source) return;
        try {
          const on = await source.enabled(cluster, s);
          if (!on.enabled) {
            findings.push({
              target: `cluster ${cluster.id}`,
              message: `audit logging is off${on.reason ? `: ${on.reason}` : ''}`,
            });
            checks.push({
              target,
              check: 'audit logs readable',
              status: 'skip',
              detail: `audit logging off on ${cluster.name}`,
            });
            return;
          }
          const window = { since: new Date(now.getTime() - 10 * 60_000), until: now };
          for await (const _page of source.read(cluster, window, s)) break;
          checks.push({ target, check: 'audit logs readable', status: 'ok' });
        } catch (error) {
          if (deps.signal?.aborted) throw error;
          checks.push(failure(deps, target, 'audit logs readable', cluster.cloud, 'audit', error));
        }
      }),
    ),
  );

  // 3. Evidence stores of every jurisdiction: write-once and inside the jurisdiction.
  deps.onProgress?.(3, 5, 'evidence stores', checks.length);
  for (const [jurisdiction, j] of Object.entries(deps.config.jurisdictions)) {
    let stores: ArchiveStore[];
    try {
      stores = await deps.evidence.all(jurisdiction);
    } catch (error) {
      checks.push({
        target: `evidence ${jurisdiction}`,
        check: 'evidence write-once and in jurisdiction',
        status: 'fail',
        detail: errorInfo(error).message,
        fix: [`set jurisdictions.${jurisdiction}.evidence (a write-once bucket in the jurisdiction)`],
      });
      continue;
    }
    await Promise.all(
      stores.map((store) =>
        limit(async () => {
          const target = `evidence ${jurisdiction} ${store.id}`;
          const cloud = store.id.split(':')[0] === 'gcs' ? 'gcp' : store.id.split(':')[0]!;
          try {
            const where = await store.location(s);
            if (where === null) {
              checks.push({
                target,
                check: 'evidence write-once and in jurisdiction',
                status: 'fail',
                detail: `${store.id} is a local directory, not compliant storage`,
                fix: [
                  `set jurisdictions.${jurisdiction}.evidence to a write-once bucket in the jurisdiction`,
                ],
              });
              return;
            }
            try {
              deps.residency.assertResidency(
                { jurisdiction, clusterId: `evidence ${store.id}` },
                { cloud: where.cloud, region: where.region, what: 'evidence bucket' },
              );
            } catch (error) {
              if (!(error instanceof ResidencyError)) throw error;
              checks.push({
                target,
                check: 'evidence write-once and in jurisdiction',
                status: 'fail',
                detail: error.message,
                fix: [
                  `move jurisdictions.${jurisdiction}.evidence.${where.cloud} to a bucket in the jurisdiction`,
                ],
              });
              return;
            }
            await store.assertImmutable(j.audit.retentionDays, s);
            checks.push({ target, check: 'evidence write-once and in jurisdiction', status: 'ok' });
          } catch (error) {
            if (deps.signal?.aborted) throw error;
            const row = failure(
              deps,
              target,
              'evidence write-once and in jurisdiction',
              cloud,
              'evidence',
              error,
            );
            if (!row.fix)
              row.fix = [
                `make ${store.id} write-once with at least ${j.audit.retentionDays} days of retention (S3 Object Lock COMPLIANCE, a locked GCS retention policy, Azure version-level immutability)`,
              ];
            checks.push(row);
          }
        }),
      ),
    );
  }

  // 4. Velero, per cluster in a jurisdiction.
  deps.onProgress?.(4, 5, 'Velero', checks.length);
  const cache: BucketCache = new Map();
  await Promise.all(
    clusters
      .filter((c) => deps.config.jurisdictions[c.jurisdiction])
      .map((cluster) =>
        limit(async () => {
          const target = `cluster ${cluster.id}`;
          let api: Awaited<ReturnType<KubeAccess['connect']>>;
          try {
            api = await deps.kube.connect(cluster, s);
          } catch (error) {
            if (deps.signal?.aborted) throw error;
            checks.push(failure(deps, target, 'velero reachable', providerOf(cluster.cloud), 'kube', error));
            return;
          }
          try {
            const result = await preflight(api, cluster, {
              buckets: deps.buckets,
              residency: deps.residency,
              namespace: deps.config.velero.namespace,
              now,
              cache,
              ...s,
            });
            const unlocatable = result.findings.filter((f) => f.kind === 'bsl-unlocatable');
            for (const f of result.findings.filter((x) => x.kind !== 'bsl-unlocatable'))
              findings.push({ target, message: `${f.kind}: ${f.message}` });
            if (unlocatable.length > 0) {
              const cloud: RegionCloud | 'kubeconfig' = cluster.cloud;
              const row = failure(
                deps,
                target,
                'velero reachable',
                cloud === 'kubeconfig' ? 'aws' : cloud,
                'bucket',
                new Error(unlocatable.map((f) => f.message).join('; ')),
              );
              checks.push(row);
              return;
            }
            checks.push({ target, check: 'velero reachable', status: 'ok' });
          } catch (error) {
            if (deps.signal?.aborted) throw error;
            checks.push(failure(deps, target, 'velero reachable', 'kubernetes', 'velero', error));
          }
        }),
      ),
  );

  // 5. Slack routes: every webhook a route uses is readable.
  deps.onProgress?.(5, 5, 'Slack routes', checks.length);
  const slack = deps.config.slack;
  const used = new Set((slack?.routes ?? []).map((r) => r.webhook));
  for (const name of [...used].sort()) {
    const ref = slack!.webhooks[name];
    const target = `slack webhook ${name}`;
    if (!ref) continue; // the config schema refuses a route to an unknown webhook
    try {
      await deps.readSecret(ref);
      checks.push({ target, check: 'slack route resolvable', status: 'ok' });
    } catch (error) {
      const row = failure(deps, target, 'slack route resolvable', 'aws', 'secrets', error);
      const calls =
        ref.from === 'ssm'
          ? ['ssm:GetParameter']
          : ref.from === 'secretsmanager'
            ? ['secretsmanager:GetSecretValue']
            : [];
      const fixes = permissionFixes(deps.grants, 'aws', calls).map((f) => `grant ${f}`);
      row.fix =
        ref.from === 'env'
          ? [`set the environment variable ${ref.name}`]
          : [...fixes, `create ${ref.from} ${ref.name} (the webhook URL)`];
      checks.push(row);
    }
  }

  return { ok: !checks.some((c) => c.status === 'fail'), checks, findings };
}

/** 0 when every check holds, 1 when any failed (findings never fail it). */
export function exitCode(report: DoctorReport): 0 | 1 {
  return report.checks.some((c) => c.status === 'fail') ? 1 : 0;
}

/** The report as a table (failures first) with each fix under its row, then the findings. */
export function renderDoctor(report: DoctorReport, width = TABLE_WIDTH): string {
  const order = { fail: 0, skip: 1, ok: 2 } as const;
  const rows = [...report.checks].sort(
    (a, b) =>
      order[a.status] - order[b.status] || a.target.localeCompare(b.target) || a.check.localeCompare(b.check),
  );
  const size = (pick: (c: DoctorCheck) => string, title: string) =>
    Math.max(title.length, ...rows.map((r) => pick(r).length));
  const w1 = size((c) => c.status.toUpperCase(), 'STATUS');
  const w2 = size((c) => c.check, 'CHECK');
  const w3 = size((c) => c.target, 'TARGET');
  const head = (a: string, b: string, c: string) => `${a.padEnd(w1)}  ${b.padEnd(w2)}  ${c.padEnd(w3)}  `;
  // The detail wraps under its own column, or, when the targets leave it too little room, on
  // lines of its own under the check; fixes hang under the check. All within `width`.
  const detailAt = w1 + w2 + w3 + 6;
  const column = detailAt <= width - 40;
  const out = [
    column ? `${head('STATUS', 'CHECK', 'TARGET')}DETAIL` : head('STATUS', 'CHECK', 'TARGET').trimEnd(),
  ];
  for (const r of rows) {
    const detail = r.status === 'ok' ? '' : (r.detail ?? '');
    const first = head(r.status.toUpperCase(), r.check, r.target);
    if (column) out.push(...wrapHanging(first, detail, detailAt, width));
    else {
      // A target too long for the line gets a line of its own, never cut.
      if (first.trimEnd().length <= width) out.push(first.trimEnd());
      else out.push(`${r.status.toUpperCase().padEnd(w1)}  ${r.check}`, `${' '.repeat(w1 + 2)}${r.target}`);
      if (detail) out.push(...wrapHanging(' '.repeat(w1 + 2), detail, w1 + 2, width));
    }
    for (const f of r.fix ?? []) out.push(...wrapHanging(`${' '.repeat(w1 + 2)}fix: `, f, w1 + 7, width));
  }
  const failed = rows.filter((r) => r.status === 'fail').length;
  out.push(
    '',
    `${rows.length} checks, ${failed} failed${report.findings.length ? `, ${report.findings.length} findings` : ''}.`,
  );
  if (report.findings.length > 0) {
    out.push('', 'Findings (posture, not failing):');
    for (const f of report.findings) out.push(...wrapHanging(`  ${f.target}: `, f.message, 4, width));
  }
  return out.join('\n');
}
