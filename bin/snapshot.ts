/**
 * `fleetward snapshot`: evaluate every compliance control for every cluster, write each
 * jurisdiction's snapshot (JSON, HTML, Markdown, CSV) and publish it to the
 * jurisdiction's own write-once evidence bucket.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFormats } from '../shared/compliance/render/index.ts';
import { snapshotJsonSchema } from '../shared/compliance/schema.ts';
import { DEFAULT_CONFIG_FILE, loadConfig } from '../shared/config/load.ts';
import { type JurisdictionOutput, publish, type SnapshotResult } from '../shared/jobs/snapshot.ts';
import { snapshotDeps } from '../shared/runtime/deps/snapshot.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { assertJurisdiction } from '../shared/runtime/scope.ts';
import { LOG_OPTIONS, parseCommandArgs } from './args.ts';
import { LOCAL_EVIDENCE_WARNING } from './audit.ts';
import { ensureInventory } from './inventory.ts';

export const SNAPSHOT_HELP = `Usage:
  fleetward snapshot [--out DIR] [--format json,html,md,csv] [--jurisdiction J]
                     [--no-publish] [--local-evidence] [--config FILE] [--json]

Evaluates every control of the compliance catalogue (region and storage residency, secrets
encryption, private endpoint, audit logging and archives, backups within RPO, restore
drills within RTO, cost tags, budgets, Kubernetes support) for every cluster of the saved
inventory, from the evidence the other jobs recorded: each control is pass, fail,
not-applicable or unknown (no evidence yet), with the evidence it used and, for fail,
what to change. Each jurisdiction gets its own snapshot, which lists only its clusters,
and a "changed since last snapshot" section (newly failing, newly fixed).

Each jurisdiction's files are published to its evidence bucket under
snapshots/<jurisdiction>/<timestamp>/ with a manifest of SHA-256 hashes, after checking
the bucket lies inside the jurisdiction and is write-once. A jurisdiction without an
evidence bucket is not published (exit 1), unless --local-evidence is given: it is then
published to a local directory (.fleetward/evidence/), which is NOT compliant storage.
Clusters in no jurisdiction get an 'unassigned' snapshot that is written locally only.

Options:
  --out DIR            also write DIR/<jurisdiction>/snapshot.<format> and
                       DIR/fleet-summary.json (counts only)
  --format LIST        formats written to --out (default: json,html,md,csv)
  --jurisdiction J     only this jurisdiction
  --no-publish         do not write to the evidence buckets
  --local-evidence     publish a jurisdiction without an evidence bucket to a local
                       directory (not compliant storage)
  --json               print the fleet summary and where each snapshot went as JSON
  --schema             print the JSON Schema of the snapshot documents and exit

The JSON follows shared/compliance/snapshot.schema.json (also: fleetward snapshot --schema).
Exit: 0 every control passes or is not applicable, 1 some control fails or is unknown,
or a snapshot could not be published, 2 bad usage or config.`;

const OPTIONS = {
  config: { type: 'string' },
  out: { type: 'string' },
  format: { type: 'string' },
  jurisdiction: { type: 'string' },
  'no-publish': { type: 'boolean', default: false },
  'local-evidence': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  schema: { type: 'boolean', default: false },
  ...LOG_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

function line(o: JurisdictionOutput): string {
  const c = o.snapshot.summary.counts;
  const ch = o.snapshot.changes;
  const where = o.publishError
    ? `NOT PUBLISHED: ${o.publishError.message}`
    : o.published.length > 0
      ? `published to ${o.published
          .map((p) => `${p.store}${p.compliantStorage ? '' : ' [local, not compliant storage]'}`)
          .join(', ')}`
      : 'not published';
  return `${o.jurisdiction.padEnd(12)} ${String(o.snapshot.summary.clusters).padStart(4)} clusters  pass ${c.pass}  fail ${c.fail}  n/a ${c['not-applicable']}  unknown ${c.unknown}  (newly failing ${ch.newlyFailing.length}, newly fixed ${ch.newlyFixed.length})  sha256 ${o.sha256.json.slice(0, 12)}  ${where}`;
}

function render(result: SnapshotResult): string {
  const t = result.summary.totals;
  return [
    ...result.jurisdictions.map(line),
    `Fleet: ${t.clusters} clusters, ${t.counts.fail} failing and ${t.counts.unknown} unknown control results.`,
  ].join('\n');
}

export async function cmdSnapshot(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('snapshot', {
    args,
    allowPositionals: true,
    options: OPTIONS,
  });
  if (values.help) {
    console.log(SNAPSHOT_HELP);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.schema) {
    console.log(JSON.stringify(snapshotJsonSchema(), null, 2));
    return 0;
  }
  const formats = parseFormats(values.format ?? 'json,html,md,csv');
  if (values.format !== undefined && values.out === undefined)
    throw new UsageError('--format needs --out DIR');
  const logger = cliLogger(values);
  const config = await loadConfig(values.config ?? process.env.FLEETWARD_CONFIG ?? DEFAULT_CONFIG_FILE);
  assertJurisdiction(config.jurisdictions, values.jurisdiction);
  const localEvidence = values['local-evidence'];
  if (localEvidence) process.stderr.write(`${LOCAL_EVIDENCE_WARNING}\n`);
  const deps = await snapshotDeps(config, logger, { localEvidence });
  try {
    await ensureInventory(config, deps.store, logger);
    process.stderr.write('Evaluating controls...\n');
    const result = await publish(deps, {
      jurisdiction: values.jurisdiction,
      publish: !values['no-publish'],
    });
    if (values.out) {
      for (const o of result.jurisdictions) {
        const dir = join(values.out, o.jurisdiction);
        await mkdir(dir, { recursive: true });
        for (const f of formats) await writeFile(join(dir, `snapshot.${f}`), o.files[f]);
      }
      await writeFile(join(values.out, 'fleet-summary.json'), `${JSON.stringify(result.summary, null, 2)}\n`);
      process.stderr.write(`Wrote ${result.jurisdictions.length} snapshot(s) to ${values.out}\n`);
    }
    if (values.json) {
      const where = result.jurisdictions.map((o) => ({
        jurisdiction: o.jurisdiction,
        sha256: o.sha256,
        published: o.published,
        ...(o.publishError ? { publishError: o.publishError } : {}),
      }));
      console.log(JSON.stringify({ summary: result.summary, snapshots: where }, null, 2));
    } else console.log(render(result));
    const bad = result.jurisdictions.some(
      (o) =>
        o.publishError !== undefined ||
        o.snapshot.summary.counts.fail > 0 ||
        o.snapshot.summary.counts.unknown > 0,
    );
    return bad ? 1 : 0;
  } finally {
    await deps.store.close();
  }
}
