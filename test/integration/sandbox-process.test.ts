/**
 * `npm run sandbox` as a user runs it: the first stdout line names the generated config,
 * and SIGINT or SIGTERM stops every emulator it started.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config/load.ts';
import { alive } from '../sandbox/net.ts';

/** Starts the sandbox and resolves once it reports ready, with its first stdout line and moto's pid. */
function startSandboxProcess(
  dir: string,
): Promise<{ child: ChildProcess; firstLine: string; motoPid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['test/sandbox/main.ts', '--clusters', '8', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => {
      stderr += d;
      const pid = /\(pid (\d+)\)/.exec(stderr);
      if (pid) resolve({ child, firstLine: stdout.split('\n')[0]!, motoPid: Number(pid[1]) });
    });
    child.on('exit', (code) => reject(new Error(`sandbox exited early (${code}): ${stderr}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('npm run sandbox', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    'prints FLEETWARD_CONFIG first and stops cleanly on %s',
    async (signal) => {
      const dir = mkdtempSync(join(tmpdir(), 'fleetward-sandbox-proc-'));
      const { child, firstLine, motoPid } = await startSandboxProcess(dir);
      const exited = exitOf(child);

      expect(firstLine).toMatch(/^FLEETWARD_CONFIG=/);
      const configPath = firstLine.slice('FLEETWARD_CONFIG='.length);
      expect(existsSync(configPath)).toBe(true);
      const config = await loadConfig(configPath);
      expect(Object.keys(config.clouds).sort()).toEqual(['aws', 'azure', 'gcp']);
      expect(alive(motoPid)).toBe(true);

      child.kill(signal);

      expect(await exited).toBe(0);
      expect(alive(motoPid)).toBe(false);
    },
  );
});
