/**
 * `serverless package` (osls) once per source state and parameters: the output goes to
 * `.fleetward/package/<role>[-<jurisdiction>]-<hash of the sources, config and parameters>`, and a
 * later call with the same inputs reuses it instead of spending another 1.5-3 minutes of esbuild. Test files that
 * package at the same time take turns through a lock directory, so only one of them builds.
 * Packaging runs with no credentials and no endpoint: it must need neither.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, resolve } from 'node:path';

export interface Packaged {
  dir: string;
  /** Exit status and output of the packaging run (the cached run's, when reused). */
  status: number | null;
  output: string;
  reused: boolean;
}

/** What goes into the bundles and the template. */
const INPUTS = ['serverless.yml', 'package-lock.json', 'schedules', 'functions', 'shared'];

/** The deployment parameters (`--param role=...`), the config the package carries, the region. */
export interface PackageParams {
  role: 'home' | 'regional';
  jurisdiction?: string;
  region?: string;
  /** The config file to validate and package, relative to the service (default: the example config). */
  config?: string;
}

/** The home role, with the example config. */
export const HOME: PackageParams = { role: 'home' };
/** The regional role for India (`in` in the example config), in Mumbai: a regional deployment runs inside its jurisdiction. */
export const REGIONAL_IN: PackageParams = { role: 'regional', jurisdiction: 'in', region: 'ap-south-1' };

export const EXAMPLE_CONFIG = 'fleet.example.yaml';

function paramArgs(params: PackageParams): string[] {
  return [
    '--param',
    `role=${params.role}`,
    ...(params.jurisdiction !== undefined ? ['--param', `jurisdiction=${params.jurisdiction}`] : []),
    ...(params.region !== undefined ? ['--region', params.region] : []),
  ];
}

function sourceHash(root: string, params: PackageParams): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(paramArgs(params)));
  const walk = (path: string) => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) walk(join(path, entry));
      return;
    }
    hash.update(path.slice(root.length));
    hash.update(readFileSync(path));
  };
  for (const input of [...INPUTS, params.config ?? EXAMPLE_CONFIG]) walk(join(root, input));
  return hash.digest('hex').slice(0, 16);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Packages the service (or reuses the package of the same inputs) and returns where it is. */
export async function packageService(
  params: PackageParams,
  options: { root?: string; timeoutMs?: number } = {},
): Promise<Packaged> {
  const root = resolve(options.root ?? '.');
  const base = join(root, '.fleetward', 'package');
  const kind = [params.role, params.jurisdiction].filter(Boolean).join('-');
  const dir = join(base, `${kind}-${sourceHash(root, params)}`);
  const result = join(dir, 'packaging.json');
  const lock = join(base, `${dir.split('/').pop()}.lock`);
  mkdirSync(base, { recursive: true });
  const timeoutMs = options.timeoutMs ?? 400_000;
  // Waiting may span another kind's packaging (they take turns) and then this one.
  const until = Date.now() + 2 * timeoutMs + 60_000;
  for (;;) {
    if (existsSync(result)) {
      const saved = JSON.parse(readFileSync(result, 'utf8')) as Omit<Packaged, 'reused' | 'dir'>;
      return { dir, ...saved, reused: true };
    }
    try {
      mkdirSync(lock);
      break;
    } catch {
      // Another test file is packaging the same sources: wait for its result (or a stale lock).
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > timeoutMs + 30_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > until) throw new Error(`timed out waiting for ${lock}`);
      await sleep(1000);
    }
  }
  // serverless-esbuild builds in the service's own `.esbuild/`: two `serverless package` runs of
  // one service at once (home and regional) would empty each other's zips, so they take turns.
  const building = `${dir}.building`;
  const turn = join(base, 'serverless.lock');
  let holding = false;
  try {
    await acquire(turn, timeoutMs + 30_000, until);
    holding = true;
    rmSync(building, { recursive: true, force: true });
    // Async, so the emulators this process started (and their log pipes) keep running meanwhile.
    const child = spawn(
      join(root, 'node_modules', '.bin', 'serverless'),
      ['package', '--package', building, ...paramArgs(params)],
      {
        cwd: root,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: timeoutMs,
        env: {
          ...process.env,
          SLS_TELEMETRY_DISABLED: '1',
          SLS_NOTIFICATIONS_MODE: 'off',
          AWS_EC2_METADATA_DISABLED: 'true',
          // No credentials and no endpoint: packaging must not need either.
          AWS_ACCESS_KEY_ID: '',
          AWS_SECRET_ACCESS_KEY: '',
          AWS_PROFILE: '',
          AWS_ENDPOINT_URL: '',
          FLEETWARD_CONFIG: params.config ?? EXAMPLE_CONFIG,
        },
      },
    );
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const status = await new Promise<number | null>((done) => {
      child.once('error', (error) => {
        output += String(error);
        done(null);
      });
      child.once('exit', (code) => done(code));
    });
    const outcome = { status, output };
    if (status !== 0) return { dir: building, ...outcome, reused: false };
    // Only a finished package gets the name later calls look for; older packages of the same
    // parameters go (a hash has no dash: `home-<hash>` is not taken for `regional-in-<hash>`).
    for (const old of readdirSync(base)) {
      const sameKind = old.replace(/-[0-9a-f]{16}(\.building)?$/, '') === kind;
      if (sameKind && !old.endsWith('.lock') && join(base, old) !== building) {
        rmSync(join(base, old), { recursive: true, force: true });
      }
    }
    renameSync(building, dir);
    writeFileSync(result, JSON.stringify(outcome));
    return { dir, ...outcome, reused: false };
  } finally {
    if (holding) rmSync(turn, { recursive: true, force: true });
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Takes a directory lock, waiting while another process holds it; a lock older than `staleMs` is taken over. */
async function acquire(lock: string, staleMs: number, until: number): Promise<void> {
  for (;;) {
    try {
      mkdirSync(lock);
      return;
    } catch {
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > staleMs) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > until) throw new Error(`timed out waiting for ${lock}`);
      await sleep(1000);
    }
  }
}

/**
 * Runs `serverless package` with a config and parameters, nothing cached: for the refusals,
 * which end before any bundle is built.
 */
export async function tryPackage(
  params: PackageParams,
  options: { root?: string; timeoutMs?: number } = {},
): Promise<{ status: number | null; output: string }> {
  const root = resolve(options.root ?? '.');
  const out = join(root, '.fleetward', 'package', `refused-${process.pid}-${Date.now()}`);
  const child = spawn(
    join(root, 'node_modules', '.bin', 'serverless'),
    ['package', '--package', out, ...paramArgs(params)],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: options.timeoutMs ?? 120_000,
      env: {
        ...process.env,
        SLS_TELEMETRY_DISABLED: '1',
        SLS_NOTIFICATIONS_MODE: 'off',
        AWS_EC2_METADATA_DISABLED: 'true',
        FLEETWARD_CONFIG: params.config ?? EXAMPLE_CONFIG,
      },
    },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const status = await new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  rmSync(out, { recursive: true, force: true });
  return { status, output };
}
