/**
 * `fleetward audit collect|verify|digest|plan|apply`: archive control-plane audit logs into write-once,
 * in-jurisdiction storage, and walk the hash chains to prove nothing was altered.
 */
import { configPath, loadConfig } from '../shared/config/load.ts';
import { AUDIT_JOB, type CollectResult, collect, type VerifyResult, verify } from '../shared/jobs/audit.ts';
import { auditJobDeps } from '../shared/runtime/deps/audit.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { assertJurisdiction } from '../shared/runtime/scope.ts';
import { wrapHanging } from '../shared/runtime/table.ts';
import { LOG_OPTIONS, parseCommandArgs, subcommand } from './args.ts';
import {
  DIGEST_HELP,
  digestVerifyCounts,
  renderDigestVerify,
  runDigest,
  runDigestVerify,
} from './audit-digest.ts';
import { AUDIT_EXPORT_HELP, runAuditApply, runAuditPlan } from './audit-export.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';
import { EXIT, progress, summaryLine } from './output.ts';

export const AUDIT_HELP = `Usage:
  fleetward audit collect [--cluster ID] [--jurisdiction J] [--local-evidence] [--config FILE] [--json]
  fleetward audit verify  [--cluster ID] [--jurisdiction J] [--local-evidence] [--config FILE] [--json]
  fleetward audit digest  [--cluster ID] [--jurisdiction J] [--local-evidence] [--config FILE] [--json]
  fleetward audit plan    [--cluster ID] [--jurisdiction J] [--config FILE] [--json]
  fleetward audit apply   [--cluster ID] [--jurisdiction J] [--dry-run] [--max-changes N] [--config FILE] [--json]
  (and --log-level LEVEL, --log-format text|json, as every command)

'collect' reads each cluster's control-plane audit log (EKS: CloudWatch Logs; GKE: Cloud
Logging; AKS: Log Analytics) from its checkpoint, with an overlap that catches late
arrivals (deduplicated by auditID), and archives gzipped NDJSON chunks with a manifest
per chunk into the jurisdiction's evidence bucket — only after checking that the bucket is
write-once (Object Lock COMPLIANCE / locked retention / version-level immutability) for
the jurisdiction's retention and lies inside the jurisdiction. Clusters without audit
logging, or whose bucket fails a check, get a finding and nothing is written. A jurisdiction
without an evidence bucket is a finding too, unless --local-evidence is given: its archives
then go to a local directory (.fleetward/evidence/), which is NOT compliant storage (not
write-once, no retention, no region for the residency guard to check).
'verify' walks each cluster's chain, recomputes every hash, and names the first missing,
altered, extra-version, broken or gapped chunk; then checks the signed hourly digests (below).
Each cluster is 'intact', 'BROKEN' (possible
tampering), 'UNVERIFIED' (the evidence store could not be reached or read: nothing is known)
or 'nothing archived' (audit logging off, no configured jurisdiction, kubeconfig cluster, or
no chunk yet); the summary line counts each kind.
Exit: 0 done and no chain broken or unverified, 1 a finding, failure, broken or unverified
chain, 2 bad usage or config.
--notify sends the job's Slack digest of new findings after the run, as the scheduled function does.
Clusters in export mode (audit.mode: export) are skipped by 'collect': the cloud delivers.
${DIGEST_HELP}
${AUDIT_EXPORT_HELP}`;

/** Printed (stderr) by every run with `--local-evidence`. */
export const LOCAL_EVIDENCE_WARNING =
  'Warning: --local-evidence: jurisdictions without an evidence bucket write to .fleetward/evidence/, which is NOT compliant storage (not write-once, no retention, no residency check).';

const OPTIONS = {
  config: { type: 'string' },
  cluster: { type: 'string' },
  jurisdiction: { type: 'string' },
  'local-evidence': { type: 'boolean', default: false },
  'dry-run': { type: 'boolean' },
  'max-changes': { type: 'string' },
  json: { type: 'boolean', default: false },
  notify: { type: 'boolean' },
  ...LOG_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

/** What one cluster's collection archived, leaving out the zeros. */
function stats(o: { events: number; chunks: number; malformed: number; duplicates: number }): string {
  return [
    o.events === 0 && o.chunks === 0 ? 'no new events' : `${o.events} events in ${o.chunks} chunk(s)`,
    o.malformed > 0 ? `${o.malformed} malformed kept` : '',
    o.duplicates > 0 ? `${o.duplicates} duplicates dropped` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

const mib = (bytes: number) =>
  bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
const mins = (ms: number) => (ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

/**
 * One line per cluster (wrapped to 120 columns): `archived  <cluster id>: 43 events in 1 chunk(s)`,
 * then one per quota scope: `scope      aws:<account>:<region>: 120 requests, 3.1 MiB, ... of 3000 ...`.
 */
export function renderCollect(result: CollectResult): string {
  const lines = result.outcomes.flatMap((o) => {
    const head = `${o.status.padEnd(10)} ${o.clusterId}: `;
    if (o.status === 'skipped')
      return wrapHanging(head, o.note ?? o.findings.map((f) => f.message).join('; '), 11);
    if (o.status === 'failed')
      return wrapHanging(head, `${o.error.message} (${stats(o)} before the failure)`, 11);
    return wrapHanging(head, `${stats(o)}${o.compliantStorage ? '' : ' [local, not compliant storage]'}`, 11);
  });
  for (const s of result.scopes ?? []) {
    const allowed = s.capacity.bytes === undefined ? '' : ` (${mib(s.capacity.bytes)})`;
    const lag = s.lagMs === null ? 'nothing archived yet' : `lag up to ${mins(s.lagMs)}`;
    const body = [
      `${s.requests} requests, ${mib(s.bytes)}, ${s.events} events read;`,
      `${s.quota} allows ${s.capacity.requests} requests${allowed} per ${mins(s.intervalMs)};`,
      `waited ${mins(s.waitedMs)} for tokens; ${lag} (${s.clusters.length} cluster(s))`,
      s.behind ? '; FALLING BEHIND: set audit.mode: export for its clusters' : '',
    ].join(' ');
    lines.push(...wrapHanging(`${(s.behind ? 'BEHIND' : 'scope').padEnd(10)} ${s.scope}: `, body, 11));
  }
  return lines.join('\n');
}

/** The counts of a collect run, in the words of its summary line. */
export function collectCounts(result: CollectResult): Record<string, number> {
  const n = (s: CollectResult['outcomes'][number]['status']) =>
    result.outcomes.filter((o) => o.status === s).length;
  return {
    archived: n('archived'),
    'up to date': n('up-to-date'),
    skipped: n('skipped'),
    failed: n('failed'),
  };
}

/** One line per cluster (wrapped to 120 columns): `intact      <cluster id>: 1 chunk(s), 43 events`. */
export function renderVerify(result: VerifyResult): string {
  const lines = result.clusters.flatMap((c) => {
    switch (c.status) {
      case 'intact':
        return wrapHanging(`intact      ${c.clusterId}: `, `${c.chunks} chunk(s), ${c.events} events`, 12);
      case 'broken': {
        const p = c.firstProblem;
        return wrapHanging(
          `BROKEN      ${c.clusterId}: `,
          `chunk ${p?.seq ?? '?'} ${p?.key ?? ''} ${p?.problem ?? ''}: ${p?.detail ?? ''}`,
          12,
        );
      }
      case 'unverified':
        return wrapHanging(
          `UNVERIFIED  ${c.clusterId}: `,
          `the archive could not be read (${c.error?.message ?? 'unknown error'}); ${c.chunks} chunk(s) checked before`,
          12,
        );
      default:
        return wrapHanging(
          `nothing     ${c.clusterId}: `,
          `nothing archived (${c.reason ?? 'no chunk'})`,
          12,
        );
    }
  });
  return lines.join('\n');
}

/** The counts of a verify run, in the words of its summary line. */
export function verifyCounts(result: VerifyResult): Record<string, number> {
  const n = result.counts;
  return {
    intact: n.intact,
    broken: n.broken,
    unverified: n.unverified,
    'nothing archived': n['nothing-archived'],
  };
}

export async function cmdAudit(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('audit', {
    args,
    allowPositionals: true,
    options: OPTIONS,
  });
  const [sub, ...rest] = positionals;
  if (values.help || !sub) {
    console.log(AUDIT_HELP);
    return values.help ? 0 : 2;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const command = subcommand('audit', sub, ['collect', 'verify', 'digest', 'plan', 'apply']);
  if (command === 'plan') return runAuditPlan(values);
  if (command === 'apply') return runAuditApply(values);
  if (values['dry-run'] !== undefined || values['max-changes'] !== undefined)
    throw new UsageError('--max-changes and --dry-run are options of "audit apply"');
  const logger = cliLogger(values);
  const config = await loadConfig(configPath(values.config));
  assertJurisdiction(config.jurisdictions, values.jurisdiction);
  const localEvidence = values['local-evidence'];
  if (localEvidence) process.stderr.write(`${LOCAL_EVIDENCE_WARNING}\n`);
  if (command === 'digest') return runDigest(config, logger, values);
  const deps = await auditJobDeps(config, logger, { localEvidence });
  const scope = { clusterId: values.cluster, jurisdiction: values.jurisdiction };
  const bar = progress(sub === 'collect' ? 'Collecting audit logs' : 'Verifying audit chains');
  const onProgress = (done: number, total: number) => bar.update(done, total, 'clusters');
  try {
    await ensureInventory(config, deps.store, logger);
    if (sub === 'collect') {
      const result = await collect(deps, { ...scope, onProgress });
      bar.done();
      const notified = await notifyAfter(
        values.notify,
        { config, store: deps.store, logger },
        { job: AUDIT_JOB, runId: result.runId },
      );
      const code =
        !notified ||
        result.outcomes.some(
          (o) => (o.status === 'skipped' && o.findings.length > 0) || o.status === 'failed',
        )
          ? EXIT.failed
          : EXIT.ok;
      console.log(
        values.json
          ? JSON.stringify(result, null, 2)
          : `${renderCollect(result)}\n${summaryLine(collectCounts(result), code)}`,
      );
      return code;
    }
    const result = await verify(deps, { ...scope, onProgress });
    bar.done();
    const digests = await runDigestVerify(config, logger, values);
    const notified = await notifyAfter(
      values.notify,
      { config, store: deps.store, logger },
      { job: AUDIT_JOB },
    );
    const code = result.ok && digests.ok && notified ? EXIT.ok : EXIT.failed;
    console.log(
      values.json
        ? JSON.stringify({ ...result, ok: result.ok && digests.ok, digests }, null, 2)
        : `${renderVerify(result)}\n${renderDigestVerify(digests)}\n${summaryLine({ ...verifyCounts(result), ...digestVerifyCounts(digests) }, code)}`,
    );
    return code;
  } finally {
    bar.done();
    await deps.store.close();
  }
}
