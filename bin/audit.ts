/**
 * `fleetward audit collect|verify`: archive control-plane audit logs into write-once,
 * in-jurisdiction storage, and walk the hash chains to prove nothing was altered.
 */
import { configPath, loadConfig } from '../shared/config/load.ts';
import { AUDIT_JOB, type CollectResult, collect, type VerifyResult, verify } from '../shared/jobs/audit.ts';
import { auditJobDeps } from '../shared/runtime/deps/audit.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { parseLogLevel, stderrLogger } from '../shared/runtime/logger.ts';
import { assertJurisdiction } from '../shared/runtime/scope.ts';
import { parseCommandArgs, subcommand } from './args.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';

export const AUDIT_HELP = `Usage:
  fleetward audit collect [--cluster ID] [--jurisdiction J] [--local-evidence] [--config FILE] [--json]
  fleetward audit verify  [--cluster ID] [--jurisdiction J] [--local-evidence] [--config FILE] [--json]

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
altered, extra-version, broken or gapped chunk. Each cluster is 'intact', 'BROKEN' (possible
tampering), 'UNVERIFIED' (the evidence store could not be reached or read: nothing is known)
or 'nothing archived' (audit logging off, no configured jurisdiction, kubeconfig cluster, or
no chunk yet); the last line counts each kind.
Exit: 0 done and no chain broken or unverified, 1 a finding, failure, broken or unverified
chain, 2 bad usage or config.
--notify sends the job's Slack digest of new findings after the run, as the scheduled function does.`;

/** Printed (stderr) by every run with `--local-evidence`. */
export const LOCAL_EVIDENCE_WARNING =
  'Warning: --local-evidence: jurisdictions without an evidence bucket write to .fleetward/evidence/, which is NOT compliant storage (not write-once, no retention, no residency check).';

const OPTIONS = {
  config: { type: 'string' },
  cluster: { type: 'string' },
  jurisdiction: { type: 'string' },
  'local-evidence': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  notify: { type: 'boolean' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function renderCollect(result: CollectResult): string {
  const lines = result.outcomes.map((o) => {
    if (o.status === 'skipped')
      return `skipped   ${o.clusterId}: ${o.findings.map((f) => f.message).join('; ')}`;
    const stats = `${o.events} events in ${o.chunks} chunk(s), ${o.malformed} malformed kept, ${o.duplicates} duplicates dropped`;
    if (o.status === 'failed')
      return `failed    ${o.clusterId}: ${o.error.message} (${stats} before the failure)`;
    return `${o.status.padEnd(9)} ${o.clusterId}: ${stats}${o.compliantStorage ? '' : ' [local, not compliant storage]'}`;
  });
  return lines.join('\n');
}

/** One line per cluster, then `N intact, N broken, N unverified, N nothing archived`. */
export function renderVerify(result: VerifyResult): string {
  const lines = result.clusters.map((c) => {
    switch (c.status) {
      case 'intact':
        return `intact      ${c.clusterId}: ${c.chunks} chunk(s), ${c.events} events`;
      case 'broken': {
        const p = c.firstProblem;
        return `BROKEN      ${c.clusterId}: chunk ${p?.seq ?? '?'} ${p?.key ?? ''} ${p?.problem ?? ''}: ${p?.detail ?? ''}`;
      }
      case 'unverified':
        return `UNVERIFIED  ${c.clusterId}: the archive could not be read (${c.error?.message ?? 'unknown error'}); ${c.chunks} chunk(s) checked before`;
      default:
        return `nothing     ${c.clusterId}: nothing archived (${c.reason ?? 'no chunk'})`;
    }
  });
  const n = result.counts;
  lines.push(
    `${n.intact} intact, ${n.broken} broken, ${n.unverified} unverified, ${n['nothing-archived']} nothing archived.`,
  );
  return lines.join('\n');
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
  subcommand('audit', sub, ['collect', 'verify']);
  const logger = stderrLogger(parseLogLevel(values['log-level']));
  const config = await loadConfig(configPath(values.config));
  assertJurisdiction(config.jurisdictions, values.jurisdiction);
  const localEvidence = values['local-evidence'];
  if (localEvidence) process.stderr.write(`${LOCAL_EVIDENCE_WARNING}\n`);
  const deps = await auditJobDeps(config, logger, { localEvidence });
  const scope = { clusterId: values.cluster, jurisdiction: values.jurisdiction };
  try {
    await ensureInventory(config, deps.store, logger);
    if (sub === 'collect') {
      const result = await collect(deps, scope);
      await notifyAfter(
        values.notify,
        { config, store: deps.store, logger },
        { job: AUDIT_JOB, runId: result.runId },
      );
      console.log(values.json ? JSON.stringify(result, null, 2) : renderCollect(result));
      return result.outcomes.some((o) => o.status === 'skipped' || o.status === 'failed') ? 1 : 0;
    }
    const result = await verify(deps, scope);
    await notifyAfter(values.notify, { config, store: deps.store, logger }, { job: AUDIT_JOB });
    console.log(values.json ? JSON.stringify(result, null, 2) : renderVerify(result));
    return result.ok ? 0 : 1;
  } finally {
    await deps.store.close();
  }
}
