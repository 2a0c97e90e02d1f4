/**
 * Runs the Fleetward CLI as a user does, in its own Node process; asynchronous, so fakes
 * running in the test's process keep answering meanwhile.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `fleetward ...args` in its own process; `env` adds to (or overrides) this process's
 * environment; `cwd` runs it in another working directory (where `.fleetward/` goes).
 */
export function runFleetward(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../../bin/fleetward.ts', import.meta.url)), ...args],
      {
        ...(cwd ? { cwd } : {}),
        env: { ...process.env, AWS_EC2_METADATA_DISABLED: 'true', METADATA_SERVER_DETECTION: 'none', ...env },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the CLI and parses its `--json` output; rejects, with stderr, when there is none. */
export async function runFleetwardJson<T>(args: string[]): Promise<CliRun & { json: T }> {
  const run = await runFleetward([...args, '--json']);
  try {
    return { ...run, json: JSON.parse(run.stdout) as T };
  } catch {
    throw new Error(`fleetward ${args.join(' ')} printed no JSON (exit ${run.code}): ${run.stderr}`);
  }
}
