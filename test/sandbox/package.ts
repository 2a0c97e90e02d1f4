/**
 * `serverless package` (osls) once per source state: the output goes to
 * `.fleetward/package/<hash of what goes into the bundles>`, and a later call with the same
 * sources reuses it instead of spending another 1.5-3 minutes of esbuild. Test files that
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
const INPUTS = ['serverless.yml', 'package-lock.json', 'schedules', 'functions', 'shared', 'fleet.yaml'];

function sourceHash(root: string): string {
  const hash = createHash('sha256');
  const walk = (path: string) => {
    if (!existsSync(path)) return;
    if (statSync(path).isDirectory()) {
      for (const entry of readdirSync(path).sort()) walk(join(path, entry));
      return;
    }
    hash.update(path.slice(root.length));
    hash.update(readFileSync(path));
  };
  for (const input of INPUTS) walk(join(root, input));
  return hash.digest('hex').slice(0, 16);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Packages the service (or reuses the package of the same sources) and returns where it is. */
export async function packageService(options: { root?: string; timeoutMs?: number } = {}): Promise<Packaged> {
  const root = resolve(options.root ?? '.');
  const base = join(root, '.fleetward', 'package');
  const dir = join(base, sourceHash(root));
  const result = join(dir, 'packaging.json');
  const lock = join(base, `${dir.split('/').pop()}.lock`);
  mkdirSync(base, { recursive: true });
  const timeoutMs = options.timeoutMs ?? 400_000;
  const until = Date.now() + timeoutMs + 30_000;
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
  try {
    const building = `${dir}.building`;
    rmSync(building, { recursive: true, force: true });
    // Async, so the emulators this process started (and their log pipes) keep running meanwhile.
    const child = spawn(
      join(root, 'node_modules', '.bin', 'serverless'),
      ['package', '--package', building],
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
    // Only a finished package gets the name later calls look for; older packages go.
    for (const old of readdirSync(base)) {
      if (!old.endsWith('.lock') && join(base, old) !== building) {
        rmSync(join(base, old), { recursive: true, force: true });
      }
    }
    renameSync(building, dir);
    writeFileSync(result, JSON.stringify(outcome));
    return { dir, ...outcome, reused: false };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
