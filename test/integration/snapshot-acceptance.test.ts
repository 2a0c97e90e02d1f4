/**
 * Acceptance of compliance snapshots: the CLI against the whole sandbox. A first snapshot
 * with only the inventory knows nothing of backups, drills or archives (those controls are
 * `unknown`); after every other job ran once, the snapshot of each jurisdiction validates
 * against the published schema, fails the seeded violations, lists only its own clusters,
 * is published to the jurisdiction's write-once bucket with its hash, and diffs against the
 * first one.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FleetSummary, JurisdictionSnapshot } from '../../shared/compliance/schema.ts';
import { runFleetward, runFleetwardJson } from '../sandbox/cli.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';

interface SnapshotJson {
  summary: FleetSummary;
  snapshots: {
    jurisdiction: string;
    sha256: Record<string, string>;
    published: { store: string; compliantStorage: boolean; prefix: string; objects: { key: string }[] }[];
    publishError?: { message: string };
  }[];
}

const JURISDICTIONS = ['eu', 'in', 'za', 'ke'];

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
  const validate = new Ajv2020({ allErrors: true, strict: false }).compile(
    JSON.parse(readFileSync('shared/compliance/snapshot.schema.json', 'utf8')),
  );

  beforeAll(async () => {
    sandbox = await startSandbox({ clusters: 24, dir: mkdtempSync(join(tmpdir(), 'fleetward-snap-')) });
    config = ['--config', sandbox.configPath, '--log-level', 'error'];
    first = mkdtempSync(join(tmpdir(), 'fleetward-snap-first-'));
    second = mkdtempSync(join(tmpdir(), 'fleetward-snap-second-'));
    // Only discovery ran: no backup, drill, audit, tag or budget evidence yet.
    expect((await runFleetward(['discover', ...config])).code).not.toBe(2);
    const before = await runFleetward(['snapshot', ...config, '--out', first, '--no-publish']);
    expect(before.stderr).toContain('Wrote');
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
  }, 300_000);
  afterAll(async () => {
    await sandbox?.stop();
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
});
