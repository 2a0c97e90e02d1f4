import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Runs the CLI the way a user does: a separate Node process. */
function fleetward(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out = spawnSync(process.execPath, ['bin/fleetward.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, FLEETWARD_CONFIG: '', ...env },
    timeout: 30_000,
  });
  return { code: out.status, stdout: out.stdout, stderr: out.stderr };
}

describe('fleetward CLI', () => {
  let server: Server;
  let requests = 0;
  let endpoint = '';
  const dir = mkdtempSync(join(tmpdir(), 'fleetward-cli-'));

  beforeAll(async () => {
    server = createServer((_req, res) => {
      requests++;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each([
    [['snapshot', '--out', 'x', '--format', 'json,pdf'], /unknown snapshot format "pdf"/],
    [['snapshot', '--format', ' , '], /no snapshot format given/],
    [
      ['snapshot', '--log-level', 'loud'],
      /--log-level must be one of debug, info, warn, error, silent, got "loud"$/m,
    ],
    [['snapshot', '--log-level', 'wran'], /--log-level must be one of .*, got "wran"; did you mean "warn"\?/],
  ])('rejects bad snapshot usage %j with exit 2, naming the bad value', (args, message) => {
    const { code, stderr } = fleetward(args);

    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('prints the snapshot JSON Schema the repository publishes', () => {
    const { code, stdout } = fleetward(['snapshot', '--schema']);

    expect(code).toBe(0);
    expect(JSON.parse(stdout).$defs.JurisdictionSnapshot.properties.kind.const).toBe(
      'fleetward.jurisdiction-snapshot',
    );
  });

  it.each([['--version'], ['-V'], ['version']])('prints the package version with %s', (flag) => {
    const { code, stdout } = fleetward([flag]);
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };

    expect(code).toBe(0);
    expect(stdout.trim()).toBe(`fleetward ${version}`);
  });

  it('is executable as committed, so npm install leaves the tree clean', () => {
    // npm makes a package's bin executable on install; committed as 100644 it would show as changed.
    const mode = spawnSync('git', ['ls-files', '-s', 'bin/fleetward.ts'], { encoding: 'utf8' }).stdout.split(
      ' ',
    )[0];

    expect(mode).toBe('100755');
  });

  it.each([
    [['audit', 'collect', '--jurisdiction', 'de']],
    [['snapshot', '--jurisdiction', 'de', '--no-publish']],
  ])('exits 2 on an unknown jurisdiction, listing the valid ones: %j', (args) => {
    const { code, stderr } = fleetward([...args, '--config', 'fleet.example.yaml']);

    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown jurisdiction "de" \(one of: eu, in, za, ke, unassigned\)/);
  });

  it('prints help that lists the commands', () => {
    const { code, stdout } = fleetward(['--help']);

    expect(code).toBe(0);
    expect(stdout).toMatch(/discover/);
    expect(stdout).toMatch(/config validate/);
    expect(stdout).toMatch(/^ {2}notify test /m);
    expect(stdout.split('\n').filter((l) => l.length > 120)).toEqual([]);
  });

  it.each([
    'discover',
    'backup',
    'drill',
    'tags',
    'budgets',
    'audit',
    'snapshot',
    'doctor',
    'notify',
    'onboard',
  ])('loads %s only to run it, and its help fits 120 columns', (command) => {
    const { code, stdout } = fleetward(['help', command]);

    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`fleetward ${command}`));
    expect(stdout.split('\n').filter((l) => l.length > 120)).toEqual([]);
  });

  it('explains discover with --help', () => {
    const { code, stdout } = fleetward(['discover', '--help']);

    expect(code).toBe(0);
    expect(stdout).toMatch(/--json/);
  });

  it('exits 2 on an unknown command or option, suggesting the one meant', () => {
    expect(fleetward(['frobnicate']).code).toBe(2);
    const { code, stderr } = fleetward(['discover', '--jsn']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/unknown option "--jsn" for "fleetward discover"; did you mean "--json"\?/);
  });

  it('validates the example config', () => {
    const { code, stdout } = fleetward(['config', 'validate', 'fleet.example.yaml']);

    expect(code).toBe(0);
    expect(stdout).toMatch(/valid/);
  });

  it('exits 2 on a file with two errors and names both paths', () => {
    const { code, stderr } = fleetward(['config', 'validate', 'test/fixtures/config/two-errors.yaml']);

    expect(code).toBe(2);
    expect(stderr).toMatch(/jurisdictions\.eu\.audit\.retentionDays: expected a positive integer, found -5/);
    expect(stderr).toMatch(/jurisdictions\.za\.backups: unknown key; did you mean "backup"\?/);
  });

  it('prints the JSON Schema', () => {
    const { code, stdout } = fleetward(['config', 'schema']);

    expect(code).toBe(0);
    expect(JSON.parse(stdout).properties.jurisdictions).toBeDefined();
  });

  it('refuses to discover with a bad config before calling any cloud', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'clouds:',
        '  aws:',
        `    endpoint: ${endpoint}`,
        '    accounts:',
        '      - id: "111111111111"',
        '        roleArn: arn:aws:iam::111111111111:role/fleetward-reader',
        '        regions: [eu-central-1]',
        'jurisdictions:',
        '  eu: { preset: eu-gdpr, audit: { retentionDays: 0 } }',
      ].join('\n'),
    );

    const { code, stderr } = fleetward(['discover', '--config', file]);

    expect(code).toBe(2);
    expect(stderr).toMatch(/jurisdictions\.eu\.audit\.retentionDays/);
    expect(requests).toBe(0);
  });

  it('reads the config named by FLEETWARD_CONFIG', () => {
    const { code, stderr } = fleetward(['config', 'validate'], {
      FLEETWARD_CONFIG: join(dir, 'missing.yaml'),
    });

    expect(code).toBe(2);
    expect(stderr).toMatch(/no config file at .*missing\.yaml; copy fleet\.example\.yaml/);
  });
});
