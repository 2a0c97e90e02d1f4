/**
 * Starts moto (a real third-party AWS emulator) as its own Python process on a free
 * loopback port. One PID per server, stopped by that PID.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { freePort, waitFor } from './net.ts';

export interface MotoServer {
  url: string;
  pid: number;
  /** Clears every resource in the emulator. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

const VENV_PYTHON = join('.fleetward', 'venv', 'bin', 'python');

function hasMoto(python: string): boolean {
  try {
    execFileSync(python, ['-c', 'import moto.server, flask'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One line telling the user how to get moto. */
export const MOTO_INSTRUCTION =
  "moto is not installed: run `python3 -m pip install 'moto[server]==5.2.1'` (or set FLEETWARD_MOTO_PYTHON to a Python that has it)";

/** Set by the test run's global setup when no Python has moto (see `global-setup.ts`). */
export const MOTO_MISSING_ENV = 'FLEETWARD_MOTO_MISSING';

/**
 * The Python that has moto: `FLEETWARD_MOTO_PYTHON`, the system `python3`, or a venv under
 * `.fleetward/`; when none has it and `install` is on, creates that venv and installs moto
 * into it. Throws one line of instructions when all of that fails.
 */
export function motoPython(
  options: { candidates?: string[]; install?: boolean; venvPython?: string } = {},
): string {
  // The run's global setup looked once already and found none: fail at once, in one line,
  // instead of every test file trying (and failing) the install again.
  if (!options.candidates && process.env[MOTO_MISSING_ENV]) throw new Error(MOTO_INSTRUCTION);
  const venvPython = options.venvPython ?? VENV_PYTHON;
  const candidates = options.candidates ?? [
    ...(process.env.FLEETWARD_MOTO_PYTHON ? [process.env.FLEETWARD_MOTO_PYTHON] : []),
    'python3',
    venvPython,
  ];
  for (const candidate of candidates) {
    if ((!candidate.includes('/') || existsSync(candidate)) && hasMoto(candidate)) return candidate;
  }
  if (options.install ?? true) {
    try {
      execFileSync('python3', ['-m', 'venv', dirname(dirname(venvPython))], { stdio: 'ignore' });
      execFileSync(venvPython, ['-m', 'pip', 'install', '--quiet', 'moto[server]==5.2.1'], {
        stdio: 'ignore',
        timeout: 300_000,
      });
      if (hasMoto(venvPython)) return venvPython;
    } catch {
      // fall through to the instruction below
    }
  }
  throw new Error(MOTO_INSTRUCTION);
}

/**
 * `cwd`: where moto runs. Its CloudFormation `ValidateTemplate` writes a `file.tmp` into its
 * working directory, so a test that deploys a stack gives it a temporary one.
 */
export async function startMoto(options: { port?: number; cwd?: string } = {}): Promise<MotoServer> {
  const port = options.port ?? (await freePort());
  const python = motoPython();
  const child: ChildProcess = spawn(
    // A venv path is relative to this directory, not to `cwd`.
    python.includes('/') ? resolve(python) : python,
    ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(options.cwd ? { cwd: options.cwd } : {}),
      env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', PYTHONUNBUFFERED: '1' },
    },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`moto exited: ${stderr}`);
        return (await fetch(`${url}/moto-api/data.json`)).ok;
      },
      30_000,
      'moto',
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    url,
    pid: child.pid!,
    async reset() {
      await fetch(`${url}/moto-api/reset`, { method: 'POST' });
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    },
  };
}
