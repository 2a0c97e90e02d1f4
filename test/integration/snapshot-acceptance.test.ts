import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetSummary, JurisdictionSnapshot, StatusCounts } from '../../shared/compliance/schema.ts';
import { type CliRun, runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

interface SnapshotJson {
  summary: FleetSummary;
  snapshots: {
    jurisdiction: string;
    sha256: Record<string, string>;
    published: { store: string; compliantStorage: boolean; prefix: string; objects: { key: string }[] }[];
    publishError?: { message: string };
    files: Record<string, string>;
  }[];
  summaryFile: string;
}

const JURISDICTIONS = ['eu', 'in', 'za', 'ke'];
const FORMATS = ['json', 'html', 'md', 'csv'];

/** The summary line the run must end with, from the counts of the fleet summary it wrote. */
function expectedSummary(counts: StatusCounts, tail: string) {
  const parts = [
    [counts.pass, 'pass'],
    [counts.fail, 'fail'],
    [counts['not-applicable'], 'n/a'],
    [counts.unknown, 'unknown'],
  ] as const;
  return `Summary: ${parts
    .filter(([n]) => n > 0)
    .map(([n, word]) => `${n} ${word}`)
    .join(', ')}${tail}`;
}

function read(dir: string, jurisdiction: string): JurisdictionSnapshot {
  return JSON.parse(readFileSync(join(dir, jurisdiction, 'snapshot.json'), 'utf8')) as JurisdictionSnapshot;
}

function status(snapshot: JurisdictionSnapshot, clusterName: string, control: string) {
  const cluster = snapshot.clusters.find((c) => c.name === clusterName);
  return cluster?.results.find((r) => r.control === control);
}

describe('compliance snapshots against the sandbox', () => {
  let sandbox: Sandbox;
  let config: string[];
  let first: string;
  let second: string;
  let run: SnapshotJson;
  let firstRun: CliRun;
  let secondRun: CliRun;
  const temps: string[] = [];
  const temp = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    temps.push(dir);
    return dir;
  };
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(
    JSON.parse(readFileSync('shared/compliance/snapshot.schema.json', 'utf8')),
  );

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 24, dir: mkdtempSync(join(tmpdir(), 'fleetward-snap-')) });
    config = ['--config', sandbox.configPath, '--log-level', 'error'];
    first = temp('fleetward-snap-first-');
    second = temp('fleetward-snap-second-');
    // Only discovery ran: no backup, drill, audit, tag or budget evidence yet.
    expect((await runFleetward(['discover', ...config])).code).not.toBe(2);
    firstRun = await runFleetward(['snapshot', ...config, '--out', first, '--no-publish']);
    expect(firstRun.code, firstRun.stderr).toBe(1);
    // Then every other job once.
    for (const args of [
      ['backup', 'run'],
      ['backup', 'status'],
      ['drill', 'run'],
      ['tags', 'plan'],
      ['budgets', 'plan'],
      ['audit', 'collect'],
      ['audit', 'verify'],
    ]) {
      const r = await runFleetward([...args, ...config]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(2);
    }
    const after = await runFleetwardJson<SnapshotJson>(['snapshot', ...config, '--out', second]);
    run = after.json;
    secondRun = after;
  }, 300_000);
  afterAll(async () => {
    await sandbox?.stop();
    for (const dir of temps) rmSync(dir, { recursive: true, force: true });
  });

  it('writes snapshot.{json,html,md,csv} for every jurisdiction, and a counts-only fleet summary', () => {
    const dirs = readdirSync(second).sort();

    expect(dirs).toEqual([...JURISDICTIONS, 'fleet-summary.json', 'unassigned'].sort());
    for (const j of [...JURISDICTIONS, 'unassigned']) {
      expect(readdirSync(join(second, j)).sort()).toEqual([
        'snapshot.csv',
        'snapshot.html',
        'snapshot.json',
        'snapshot.md',
      ]);
    }
    const summary = JSON.parse(readFileSync(join(second, 'fleet-summary.json'), 'utf8')) as FleetSummary;
    expect(validate(summary), JSON.stringify(validate.errors)).toBe(true);
    expect(summary.totals.clusters).toBe(sandbox.fleet.length);
    const text = JSON.stringify(summary);
    for (const c of sandbox.fleet) expect(text).not.toContain(c.name);
  });

  it('writes JSON that validates against the published schema', () => {
    for (const j of [...JURISDICTIONS, 'unassigned']) {
      const snapshot = read(second, j);
      expect(validate(snapshot), `${j}: ${JSON.stringify(validate.errors?.slice(0, 3))}`).toBe(true);
    }
  });

  it('keeps every jurisdiction to its own clusters', () => {
    for (const j of [...JURISDICTIONS, 'unassigned']) {
      const snapshot = read(second, j);
      const others = sandbox.fleet.filter(
        (c) => !snapshot.clusters.some((s) => s.name === c.name && s.region === c.region),
      );
      for (const file of ['json', 'html', 'md', 'csv']) {
        const text = readFileSync(join(second, j, `snapshot.${file}`), 'utf8');
        for (const other of others) expect(text, `${j}/${file}`).not.toContain(other.name);
      }
    }
  });

  it('fails the seeded violations: encryption off, audit logging off, unassigned region', () => {
    const all = [...JURISDICTIONS, 'unassigned'].map((j) => read(second, j));
    const find = (name: string) => all.find((s) => s.clusters.some((c) => c.name === name))!;

    const encOff = sandbox.fleet.filter((c) => !c.encrypted && c.cloud !== 'kubeconfig');
    expect(encOff.length).toBeGreaterThan(0);
    for (const c of encOff) {
      const r = status(find(c.name), c.name, 'security.secrets-encryption');
      expect(r?.status, c.name).toBe('fail');
      expect(r?.remedy).toBeTruthy();
    }
    const auditOff = sandbox.fleet.filter((c) => !c.auditLogging && c.cloud !== 'kubeconfig');
    expect(auditOff.length).toBeGreaterThan(0);
    for (const c of auditOff) {
      expect(status(find(c.name), c.name, 'audit.logging-enabled')?.status, c.name).toBe('fail');
    }
    const unassigned = read(second, 'unassigned');
    expect(unassigned.clusters.length).toBeGreaterThan(0);
    for (const c of unassigned.clusters) {
      expect(c.results.find((r) => r.control === 'residency.cluster-region')?.status).toBe('fail');
    }
    // And a healthy EU cluster passes the same controls, with the evidence it used.
    const eu = read(second, 'eu');
    const healthy = eu.clusters.find(
      (c) =>
        c.results.find((r) => r.control === 'security.secrets-encryption')?.status === 'pass' &&
        c.results.find((r) => r.control === 'residency.cluster-region')?.status === 'pass',
    );
    expect(healthy).toBeDefined();
    expect(healthy!.results.every((r) => r.evidence.length > 0 || r.status === 'unknown')).toBe(true);
  });

  it('evaluates controls without evidence as unknown, never pass', () => {
    const eu = read(first, 'eu');
    const jobControls = [
      'backup.rpo',
      'backup.restore-drill',
      'audit.archive-current',
      'audit.chain-verified',
    ];
    for (const c of eu.clusters) {
      for (const control of jobControls) {
        const r = c.results.find((x) => x.control === control);
        expect(r?.status, `${c.id} ${control}`).not.toBe('pass');
      }
    }
    const unknown = eu.clusters.flatMap((c) => c.results.filter((r) => jobControls.includes(r.control)));
    expect(unknown.filter((r) => r.status === 'unknown').length).toBeGreaterThan(eu.clusters.length);
    // After the jobs ran, the same controls have evidence and some pass.
    const later = read(second, 'eu');
    const passing = later.clusters.flatMap((c) =>
      c.results.filter((r) => jobControls.includes(r.control) && r.status === 'pass'),
    );
    expect(passing.length).toBeGreaterThan(0);
  });

  it('lists what changed since the previous snapshot', () => {
    const eu = read(second, 'eu');

    expect(eu.changes.previous).not.toBeNull();
    expect(eu.changes.newlyFixed.length + eu.changes.otherChanges.length).toBeGreaterThan(0);
    const html = readFileSync(join(second, 'eu', 'snapshot.html'), 'utf8');
    expect(html).toContain('id="changes"');
  });

  it('publishes each jurisdiction to its own write-once evidence bucket with the hash recorded', async () => {
    const eu = run.snapshots.find((s) => s.jurisdiction === 'eu')!;

    expect(eu.publishError).toBeUndefined();
    expect(eu.published.length).toBeGreaterThan(0);
    expect(eu.published.every((p) => p.compliantStorage)).toBe(true);
    expect(run.snapshots.find((s) => s.jurisdiction === 'unassigned')?.published).toEqual([]);
    const s3 = eu.published.find((p) => p.store.startsWith('aws:'));
    expect(s3).toBeDefined();
    const client = new S3Client({
      endpoint: sandbox.moto.url,
      region: 'eu-central-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    });
    const key = `${s3!.prefix}snapshot.json`;
    const body = await (
      await client.send(new GetObjectCommand({ Bucket: s3!.store.slice('aws:'.length), Key: key }))
    ).Body!.transformToByteArray();
    expect(createHash('sha256').update(body).digest('hex')).toBe(eu.sha256.json);
    expect(new TextDecoder().decode(body)).toBe(readFileSync(join(second, 'eu', 'snapshot.json'), 'utf8'));
  });
  it('prints every file it wrote, each of which exists, then one summary line', () => {
    const lines = firstRun.stdout.trimEnd().split('\n');
    const wrote = lines.findIndex((l) => l.startsWith('Wrote '));
    const printed = lines.slice(wrote + 1, -1).map((l) => l.trim());
    const summary = JSON.parse(readFileSync(join(first, 'fleet-summary.json'), 'utf8')) as FleetSummary;

    const expected = [
      ...[...JURISDICTIONS, 'unassigned'].flatMap((j) => FORMATS.map((f) => join(first, j, `snapshot.${f}`))),
      join(first, 'fleet-summary.json'),
    ];
    expect([...printed].sort()).toEqual([...expected].sort());
    for (const path of printed) expect(existsSync(path), path).toBe(true);
    expect(lines).toContain(`Wrote ${expected.length} files (open a snapshot.html in a browser):`);
    for (const j of [...JURISDICTIONS, 'unassigned']) {
      const row = lines.find((l) => l.startsWith(`${j} `));
      expect(row, j).toMatch(/^\S+ +\d+ clusters {2}pass \d+ {2}fail \d+ {2}n\/a \d+ {2}unknown \d+/);
      expect(row!.length).toBeLessThanOrEqual(120);
    }
    expect(firstRun.stdout).toContain('not published (--no-publish)');
    expect(lines.at(-1)).toBe(expectedSummary(summary.totals.counts, ' (exit 1: completed with failures)'));
  });

  it('gives the paths and the summary line with --json too: paths in the JSON, the line on stderr', () => {
    const published = run.snapshots.filter((s) => s.published.length > 0).length;
    const failed = run.snapshots.filter((s) => s.publishError).length;

    expect(run.summaryFile).toBe(join(second, 'fleet-summary.json'));
    for (const s of run.snapshots) {
      expect(Object.keys(s.files).sort()).toEqual([...FORMATS].sort());
      for (const [format, path] of Object.entries(s.files)) {
        expect(path).toBe(join(second, s.jurisdiction, `snapshot.${format}`));
        expect(existsSync(path)).toBe(true);
      }
    }
    expect(published).toBe(JURISDICTIONS.length);
    const tail = `, ${published} published${failed > 0 ? `, ${failed} not published` : ''} (exit 1: completed with failures)`;
    expect(secondRun.stderr.trimEnd().split('\n').at(-1)).toBe(
      expectedSummary(run.summary.totals.counts, tail),
    );
  });

  it('writes under .fleetward/snapshots/ of the working directory without --out', async () => {
    const cwd = temp('fleetward-snap-cwd-');

    const r = await runFleetward(['snapshot', ...config, '--jurisdiction', 'eu', '--no-publish'], {}, cwd);

    expect(r.code, r.stderr).toBe(1);
    const html = join('.fleetward', 'snapshots', 'eu', 'snapshot.html');
    expect(r.stdout.split('\n')).toContain(`  ${html}`);
    expect(readFileSync(join(cwd, html), 'utf8')).toMatch(/^<!doctype html>/);
    expect(readdirSync(join(cwd, '.fleetward', 'snapshots')).sort()).toEqual(['eu', 'fleet-summary.json']);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(
      /^Summary: \d+ pass, .*\(exit 1: completed with failures\)$/,
    );
  });

  it('refuses an --out it cannot write before evaluating anything: exit 2, no path printed', async () => {
    const dir = temp('fleetward-snap-bad-out-');
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');

    const r = await runFleetward(['snapshot', ...config, '--out', join(file, 'snaps'), '--no-publish']);

    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`cannot write snapshots to --out "${join(file, 'snaps')}" (ENOTDIR)`);
    expect(r.stderr).not.toContain('Evaluating');
    expect(r.stdout).toBe('');
  });
});
