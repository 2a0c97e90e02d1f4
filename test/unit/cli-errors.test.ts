/**
 * Errors that teach, as a user meets them on the command line: every command reports the same
 * way, names its own help, suggests the flag, subcommand, command, key or region meant, and
 * exits 2 for a bad command line or config; a far-off mistake suggests nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cmdBudgets } from '../../bin/budgets.ts';
import { reportError, runReported } from '../../bin/errors.ts';
import { main } from '../../bin/fleetward.ts';
import { cmdTags } from '../../bin/tags.ts';
import { UnknownClusterError } from '../../shared/jobs/fleet.ts';
import { EndpointUnreachableError } from '../../shared/runtime/errors.ts';

/** Runs `fleetward <args>` in this process; returns its exit code and what it printed. */
async function fleetward(run: () => Promise<number>) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  // The test runner routes console output around process.stdout; catch it where it is written.
  const log = vi.spyOn(console, 'log').mockImplementation((...parts: unknown[]) => {
    stdout += `${parts.join(' ')}\n`;
  });
  const error = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => {
    stderr += `${parts.join(' ')}\n`;
  });
  try {
    const code = await run();
    return { code, stdout, stderr };
  } finally {
    for (const spy of [out, err, log, error]) spy.mockRestore();
  }
}

const cli = (...args: string[]) => fleetward(() => main(args));

const dir = mkdtempSync(join(tmpdir(), 'fleetward-cli-errors-'));

/** A config file in the test's directory. */
function configFile(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

const AWS = [
  'version: 1',
  'clouds:',
  '  aws:',
  '    accounts:',
  '      - id: "111111111111"',
  '        roleArn: arn:aws:iam::111111111111:role/fleetward-reader',
];

beforeEach(() => {
  vi.stubEnv('FLEETWARD_CONFIG', '');
  vi.stubEnv('FLEETWARD_DEBUG', '');
});
afterEach(() => {
  vi.unstubAllEnvs();
});

describe('fleetward: did you mean', () => {
  it.each([
    [['discove'], 'unknown command "discove"; did you mean "discover"?', 'fleetward --help'],
    [['--verison'], 'unknown option "--verison"; did you mean "--version"?', 'fleetward --help'],
    [
      ['discover', '--jsn'],
      'unknown option "--jsn" for "fleetward discover"; did you mean "--json"?',
      'fleetward discover --help',
    ],
    [
      ['backup', 'rnu'],
      'unknown backup command "rnu" (expected run or status); did you mean "run"?',
      'fleetward backup --help',
    ],
    [
      ['drill', 'stats'],
      'unknown drill command "stats" (expected run or status); did you mean "status"?',
      'fleetward drill --help',
    ],
    [
      ['tags', 'pln'],
      'unknown tags command "pln" (expected plan or apply); did you mean "plan"?',
      'fleetward tags --help',
    ],
    [
      ['budgets', 'aply'],
      'unknown budgets command "aply" (expected plan or apply); did you mean "apply"?',
      'fleetward budgets --help',
    ],
    [
      ['audit', 'colect'],
      'unknown audit command "colect" (expected one of: collect, verify, digest, plan, apply); did you mean "collect"?',
      'fleetward audit --help',
    ],
    [
      ['config', 'valdate'],
      'unknown config command "valdate" (expected validate or schema); did you mean "validate"?',
      'fleetward config --help',
    ],
    [
      ['onboard', 'azur'],
      'unknown onboard target "azur" (expected one of: aws, gcp, azure, kubernetes, evidence); did you mean "azure"?',
      'fleetward onboard --help',
    ],
  ])('%j: suggests what was meant, names the help and exits 2', async (args, message, help) => {
    const { code, stderr } = await cli(...args);

    expect(code).toBe(2);
    expect(stderr).toBe(`fleetward: ${message}\nRun '${help}' for usage.\n`);
  });

  it.each([
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['constructor'], 'unknown command "constructor"'],
    [['discover', '--frobnicate'], 'unknown option "--frobnicate" for "fleetward discover"'],
    [['backup', 'xyz'], 'unknown backup command "xyz" (expected run or status)'],
  ])('%j: suggests nothing for a far-off word, and still exits 2', async (args, message) => {
    const { code, stderr } = await cli(...args);

    expect(code).toBe(2);
    expect(stderr.split('\n')[0]).toBe(`fleetward: ${message}`);
    expect(stderr).not.toMatch(/did you mean/);
  });
});

describe('fleetward: config errors', () => {
  it('suggests the key meant, and says the expected type and the value found', async () => {
    const file = configFile('typo.yaml', [
      ...AWS.slice(0, 3),
      '    acounts:',
      ...AWS.slice(4),
      '        regions: [eu-central-1]',
      'jurisdictions:',
      '  eu: { preset: eu-gdpr, drill: { rtoMinutes: sixty } }',
    ]);

    const { code, stderr } = await cli('config', 'validate', file);

    expect(code).toBe(2);
    expect(stderr).toBe(
      [
        `fleetward: invalid config ${file}:`,
        '  clouds.aws.acounts: unknown key; did you mean "accounts"?',
        '  jurisdictions.eu.drill.rtoMinutes: expected a positive integer, found "sixty"',
        '',
      ].join('\n'),
    );
  });

  it('suggests the region meant', async () => {
    const file = configFile('region.yaml', [
      ...AWS,
      '        regions: [eu-central-1, eu-centrall-1]',
      'jurisdictions: { eu: { preset: eu-gdpr } }',
    ]);

    const { code, stderr } = await cli('config', 'validate', file);

    expect(code).toBe(2);
    expect(stderr).toContain(
      '  clouds.aws.accounts.0.regions.1: unknown AWS region "eu-centrall-1"; did you mean "eu-central-1"?\n',
    );
  });

  it('gives a YAML syntax error its position once, as file:line:column', async () => {
    const file = configFile('syntax.yaml', ['version: 1', 'clouds:', '  aws: [', 'jurisdictions: {}']);

    const { code, stderr } = await cli('config', 'validate', file);

    expect(code).toBe(2);
    expect(stderr).toBe(
      `fleetward: ${file}:4:1: flow sequence in block collection must be sufficiently indented and end with a ]\n`,
    );
  });

  it.each([
    ['discover'],
    ['backup', 'run'],
    ['drill', 'status'],
    ['tags', 'plan'],
    ['budgets', 'plan'],
    ['audit', 'verify'],
    ['snapshot', '--no-publish'],
    ['doctor'],
    ['onboard', 'aws'],
    ['config', 'validate'],
  ])('%j: a missing config points to fleet.example.yaml and the sandbox, exit 2', async (...args) => {
    const { code, stderr } = await cli(...args, '--config', 'no-such-fleet.yaml');

    expect(code).toBe(2);
    expect(stderr).toBe(
      "fleetward: no config file at ./no-such-fleet.yaml; copy fleet.example.yaml to no-such-fleet.yaml and edit it, or run 'npm run sandbox' for a local fleet\n",
    );
  });

  it('validates a correct config without a word on stderr', async () => {
    const { code, stdout, stderr } = await cli('config', 'validate', 'fleet.example.yaml');

    expect(code).toBe(0);
    expect(stdout).toMatch(/fleet\.example\.yaml: valid/);
    expect(stderr).toBe('');
  });
});

describe('fleetward: one error reporter', () => {
  it.each([
    ['tags', cmdTags, ['pln'], 'unknown tags command "pln" (expected plan or apply); did you mean "plan"?'],
    ['budgets', cmdBudgets, ['plan', 'x'], 'unexpected argument "x"'],
  ] as const)('%s run alone reports as it does under fleetward', async (command, run, args, message) => {
    const alone = await fleetward(() => runReported(command, run, [...args]));
    const within = await cli(command, ...args);

    expect(alone).toEqual(within);
    expect(alone.code).toBe(2);
    expect(alone.stderr).toBe(`fleetward: ${message}\nRun 'fleetward ${command} --help' for usage.\n`);
  });

  const unreachable = () =>
    new EndpointUnreachableError(
      {
        cloud: 'aws',
        operation: 'ListClusters',
        service: 'EKS',
        endpoint: 'http://127.0.0.1:1',
        reason: 'connection refused',
      },
      { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') },
    );

  it('prints an unexpected error as fleetward: <message> with its cause, no class name, no stack, exit 1', () => {
    let text = '';

    const code = reportError(unreachable(), { command: 'discover', write: (t) => (text += t), env: {} });

    expect(code).toBe(1);
    expect(text).toBe(
      'fleetward: cannot reach EKS at http://127.0.0.1:1: connection refused\n  cause: connect ECONNREFUSED 127.0.0.1:1\n',
    );
  });

  it('tells how to get the stack trace of an error that is not ours (most likely a bug)', () => {
    let text = '';

    const code = reportError(new TypeError('x is not a function'), { write: (t) => (text += t), env: {} });

    expect(code).toBe(1);
    expect(text).toBe(
      'fleetward: x is not a function\nRun again with FLEETWARD_DEBUG=1 (or --log-level debug) for the stack trace.\n',
    );
  });

  it.each([
    ['--log-level debug', { args: ['run', '--log-level', 'debug'], env: {} }],
    ['--log-level=debug', { args: ['--log-level=debug'], env: {} }],
    ['FLEETWARD_DEBUG=1', { args: [], env: { FLEETWARD_DEBUG: '1' } }],
  ])('adds the stack trace with %s', (_name, context) => {
    let text = '';

    reportError(unreachable(), { ...context, write: (t) => (text += t) });

    expect(text).toMatch(/^fleetward: cannot reach EKS/);
    expect(text).toMatch(/\n {4}at /);
  });

  it('keeps the stack trace out at --log-level info', () => {
    let text = '';

    reportError(unreachable(), { args: ['--log-level', 'info'], env: {}, write: (t) => (text += t) });

    expect(text).not.toMatch(/\n {4}at /);
  });

  it('reports an unknown cluster with the ids it could mean, exit 2, no class name', () => {
    let text = '';

    const code = reportError(
      new UnknownClusterError('ml-prod-05', ['aws/111111111111/eu-west-1/ml-prod-0005']),
      {
        command: 'backup',
        write: (t) => (text += t),
      },
    );

    expect(code).toBe(2);
    expect(text).not.toMatch(/UnknownClusterError/);
    expect(text).toMatch(/^fleetward: no cluster "ml-prod-05" in the inventory/);
    expect(text).toMatch(/\n {2}did you mean: aws\/111111111111\/eu-west-1\/ml-prod-0005\n$/);
  });
});
