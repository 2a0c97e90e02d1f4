/**
 * `fleetward doctor`: does every configured scope give a run the access it needs? Prints
 * one row per check and, for each failure, the permission or setting to add
 * (shared/jobs/doctor.ts does the checking).
 */
import { createAuditWiring, createEvidenceStores } from '../shared/audit/wiring.ts';
import { createBucketLocator } from '../shared/clouds/buckets.ts';
import { createDiscoveries } from '../shared/clouds/registry.ts';
import { configPath, loadConfig } from '../shared/config/load.ts';
import { exitCode, renderDoctor, run } from '../shared/jobs/doctor.ts';
import { createKubeAccess } from '../shared/kube/access.ts';
import { systemClock } from '../shared/ports.ts';
import { Residency } from '../shared/residency/index.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { readSecret } from '../shared/runtime/secrets.ts';
import { LOG_OPTIONS, parseCommandArgs } from './args.ts';
import { progress, summaryLine } from './output.ts';

export const DOCTOR_HELP = `Usage: fleetward doctor [--config FILE] [--json] [--log-level LEVEL] [--log-format FORMAT]

Checks that every configured scope gives Fleetward the access a run needs, with the
credentials this process has (run it with the deployment's identity to check the deployment):
  credentials          the AWS role of each account can be assumed, GCP/Azure tokens obtained
  clusters listable    every AWS account/region, GCP project, Azure subscription and
                       kubeconfig context lists its clusters
  audit logs readable  one cluster per account/region, project or subscription: its
                       control-plane audit log can be read
  evidence write-once and in jurisdiction
                       each jurisdiction's evidence bucket is write-once for the audit
                       retention and lies inside the jurisdiction
  velero reachable     every cluster in a jurisdiction: its Kubernetes API answers and
                       Velero's objects can be read
  slack route resolvable
                       each webhook a Slack route uses can be read (never printed)
Each failure names the exact permission to grant (from Fleetward's permission table, with
who holds it: the function role, the member account role, the project or subscription
role, the cluster's ClusterRole) or the setting to change. Posture seen on the way
(audit logging off, Velero not installed, a storage location outside the jurisdiction)
is listed as findings and does not fail the run. Nothing is written anywhere.

Options:
  --json      print {"ok", "checks": [{target, check, status, detail?, fix?}], "findings"}
Exit: 0 every check holds, 1 some access is missing, 2 bad usage or config.`;

const OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean', default: false },
  ...LOG_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

export async function cmdDoctor(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('doctor', {
    args,
    allowPositionals: true,
    options: OPTIONS,
  });
  if (values.help) {
    console.log(DOCTOR_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const logger = cliLogger(values);
  const config = await loadConfig(configPath(values.config));
  // The grants table loads every adapter: only here, never for the other commands.
  const [{ allGrants }, discoveries, audit] = await Promise.all([
    import('../shared/clouds/grants.ts'),
    createDiscoveries(config, { logger }),
    createAuditWiring(config, { logger }),
  ]);
  const bar = progress('Checking access');
  const report = await run({
    onProgress: (stage, stages, name, checks) =>
      bar.update(stage, stages, `stages (${name}; ${checks} checks so far)`),
    config,
    discoveries,
    kube: createKubeAccess(config, { logger }),
    buckets: createBucketLocator(config, { logger }),
    residency: new Residency(config.jurisdictions),
    audit: audit.sources,
    evidence: createEvidenceStores(config, { logger }),
    readSecret: (ref) => readSecret(ref as Parameters<typeof readSecret>[0]),
    grants: allGrants(),
    logger,
    clock: systemClock,
  });
  bar.done();
  const code = exitCode(report);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    const n = (status: string) => report.checks.filter((c) => c.status === status).length;
    const counts = { ok: n('ok'), failed: n('fail'), skipped: n('skip'), findings: report.findings.length };
    console.log(`${renderDoctor(report)}\n${summaryLine(counts, code)}`);
  }
  return code;
}
