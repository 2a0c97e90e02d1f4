/**
 * `fleetward snapshot`: evaluate every compliance control for every cluster, write each
 * jurisdiction's snapshot (JSON, HTML, Markdown, CSV) to a local folder (default
 * `.fleetward/snapshots/`), publish it to the jurisdiction's own write-once evidence
 * bucket, and print where every file went.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseFormats, type SnapshotFormat } from '../shared/compliance/render/index.ts';
import { snapshotJsonSchema } from '../shared/compliance/schema.ts';
import { configPath, loadConfig } from '../shared/config/load.ts';
import {
  type JurisdictionOutput,
  publish,
  type SnapshotResult,
  snapshotReport,
} from '../shared/jobs/snapshot.ts';
import { UNASSIGNED } from '../shared/model.ts';
import { snapshotDeps } from '../shared/runtime/deps/snapshot.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { cliLogger } from '../shared/runtime/logger.ts';
import { assertJurisdiction } from '../shared/runtime/scope.ts';
import { LOG_OPTIONS, parseCommandArgs } from './args.ts';
import { LOCAL_EVIDENCE_WARNING } from './audit.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';
import { EXIT, progress, summaryLine } from './output.ts';

/** Where the snapshot files go without `--out`: under `.fleetward/`, which git ignores. */
export const DEFAULT_SNAPSHOT_DIR = join('.fleetward', 'snapshots');

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

The files are also written locally, to DIR/<jurisdiction>/snapshot.<format> and
DIR/fleet-summary.json (counts only); the command prints every path it wrote (open the
.html in a browser: search, filter and sort the control matrix) and ends with a summary
line: control results by status, jurisdictions published and not published.

Options:
  --out DIR            where to write the files (default: .fleetward/snapshots)
  --format LIST        formats written to DIR (default: json,html,md,csv)
  --jurisdiction J     only this jurisdiction
  --no-publish         do not write to the evidence buckets
  --local-evidence     publish a jurisdiction without an evidence bucket to a local
                       directory (not compliant storage)
  --json               print the fleet summary, where each snapshot went and the paths
                       written as JSON (the summary line then goes to stderr)
  --notify             send the Slack digest (counts, newly failing and fixed controls), as the function does
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
  notify: { type: 'boolean' },
  schema: { type: 'boolean', default: false },
  ...LOG_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

/** One jurisdiction: its counts, then where it was published (or why not). */
function jurisdictionLines(o: JurisdictionOutput, publishing: boolean): string[] {
  const c = o.snapshot.summary.counts;
  const ch = o.snapshot.changes;
  const pad = ' '.repeat(12);
  const head = `${o.jurisdiction.padEnd(11)} ${String(o.snapshot.summary.clusters).padStart(4)} clusters  pass ${c.pass}  fail ${c.fail}  n/a ${c['not-applicable']}  unknown ${c.unknown}  newly failing ${ch.newlyFailing.length}  newly fixed ${ch.newlyFixed.length}`;
  const where = o.publishError
    ? [`NOT PUBLISHED: ${o.publishError.message}`]
    : o.published.length > 0
      ? o.published.map(
          (p) =>
            `published to ${p.store} at ${p.prefix}${p.compliantStorage ? '' : ' [local, not compliant storage]'}`,
        )
      : [
          o.jurisdiction === UNASSIGNED
            ? 'not published: clusters in no jurisdiction are written locally only'
            : publishing
              ? 'not published'
              : 'not published (--no-publish)',
        ];
  return [head, ...where.map((w) => `${pad}${w}`)];
}

/** The files one run wrote, by jurisdiction, HTML first: what a reader opens. */
interface Written {
  byJurisdiction: { jurisdiction: string; files: Partial<Record<SnapshotFormat, string>> }[];
  summary: string;
}

function render(result: SnapshotResult, written: Written, publishing: boolean): string {
  const paths = written.byJurisdiction.flatMap((w) => {
    const files = Object.entries(w.files) as [SnapshotFormat, string][];
    return files.sort(([a], [b]) => Number(b === 'html') - Number(a === 'html')).map(([, path]) => path);
  });
  return [
    ...result.jurisdictions.flatMap((o) => jurisdictionLines(o, publishing)),
    '',
    `Wrote ${paths.length + 1} files (open a snapshot.html in a browser):`,
    ...[...paths, written.summary].map((path) => `  ${path}`),
  ].join('\n');
}

/** The closing summary: control results by status, and how many jurisdictions were published. */
function summary(result: SnapshotResult, exitCode: number): string {
  const t = result.summary.totals;
  return summaryLine(
    {
      pass: t.counts.pass,
      fail: t.counts.fail,
      'n/a': t.counts['not-applicable'],
      unknown: t.counts.unknown,
      published: result.jurisdictions.filter((o) => o.published.length > 0).length,
      'not published': result.jurisdictions.filter((o) => o.publishError !== undefined).length,
    },
    exitCode,
  );
}

/** Creates the output folder before the (long) evaluation, so a bad --out fails at once. */
async function prepareOut(out: string): Promise<void> {
  try {
    await mkdir(out, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`cannot write snapshots to --out "${out}" (${code})`);
  }
}

async function writeFiles(result: SnapshotResult, out: string, formats: SnapshotFormat[]): Promise<Written> {
  const byJurisdiction: Written['byJurisdiction'] = [];
  for (const o of result.jurisdictions) {
    const dir = join(out, o.jurisdiction);
    await mkdir(dir, { recursive: true });
    const files: Partial<Record<SnapshotFormat, string>> = {};
    for (const f of formats) {
      files[f] = join(dir, `snapshot.${f}`);
      await writeFile(files[f], o.files[f]);
    }
    byJurisdiction.push({ jurisdiction: o.jurisdiction, files });
  }
  const summaryFile = join(out, 'fleet-summary.json');
  await writeFile(summaryFile, `${JSON.stringify(result.summary, null, 2)}\n`);
  return { byJurisdiction, summary: summaryFile };
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
  const out = values.out ?? DEFAULT_SNAPSHOT_DIR;
  const logger = cliLogger(values);
  const config = await loadConfig(configPath(values.config));
  assertJurisdiction(config.jurisdictions, values.jurisdiction);
  await prepareOut(out);
  const localEvidence = values['local-evidence'];
  if (localEvidence) process.stderr.write(`${LOCAL_EVIDENCE_WARNING}\n`);
  const deps = await snapshotDeps(config, logger, { localEvidence });
  const publishing = !values['no-publish'];
  try {
    await ensureInventory(config, deps.store, logger);
    process.stderr.write(
      publishing ? 'Evaluating controls and publishing snapshots...\n' : 'Evaluating controls...\n',
    );
    const shown = progress(publishing ? 'Evaluating and publishing' : 'Evaluating');
    let result: SnapshotResult;
    try {
      result = await publish(deps, {
        jurisdiction: values.jurisdiction,
        publish: publishing,
        onProgress: (done, total, j) => shown.update(done, total, `jurisdictions, last ${j}`),
      });
    } finally {
      shown.done();
    }
    const notified = await notifyAfter(values.notify, deps, { report: snapshotReport(result) });
    const written = await writeFiles(result, out, formats);
    const bad =
      !notified ||
      result.jurisdictions.some(
        (o) =>
          o.publishError !== undefined ||
          o.snapshot.summary.counts.fail > 0 ||
          o.snapshot.summary.counts.unknown > 0,
      );
    const exitCode = bad ? EXIT.failed : EXIT.ok;
    if (values.json) {
      const where = result.jurisdictions.map((o, i) => ({
        jurisdiction: o.jurisdiction,
        sha256: o.sha256,
        published: o.published,
        ...(o.publishError ? { publishError: o.publishError } : {}),
        files: written.byJurisdiction[i]?.files ?? {},
      }));
      console.log(
        JSON.stringify({ summary: result.summary, snapshots: where, summaryFile: written.summary }, null, 2),
      );
      process.stderr.write(`${summary(result, exitCode)}\n`);
    } else {
      console.log(render(result, written, publishing));
      console.log(summary(result, exitCode));
    }
    return exitCode;
  } finally {
    await deps.store.close();
  }
}
