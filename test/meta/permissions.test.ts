/**
 * The permission meta test: every provider call the sandbox flows make has a declared grant
 * (shared/clouds/grants.ts). One sandbox runs the flows through the CLI, as a user does:
 * discover, backup run + status (reconcile), drill, tags plan/apply, budgets plan/apply,
 * audit collect + verify, snapshot (published). Its request log names each call
 * (test/sandbox/request-log.ts); a call no grant declares fails the test, with its name.
 * Declared grants no flow used are printed (console.info), not failed: some calls only run
 * deployed (queues, the state table, secrets, AppConfig).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allGrants } from '../../shared/clouds/grants.ts';
import { runFleetward } from '../sandbox/cli.ts';
import type { RequestInfo } from '../sandbox/faults.ts';
import { type Sandbox, startSandbox } from '../sandbox/index.ts';
import { callOf, undeclaredCalls, unusedGrants } from '../sandbox/request-log.ts';

/** The flows, in the order a first day runs them (the drill needs a completed backup). */
const FLOWS: readonly string[][] = [
  ['discover'],
  ['backup', 'run'],
  ['backup', 'status'],
  ['drill', 'run'],
  ['tags', 'plan'],
  ['tags', 'apply'],
  ['budgets', 'plan'],
  ['budgets', 'apply'],
  ['audit', 'collect'],
  ['audit', 'verify'],
  ['snapshot'],
];

describe('provider permissions of the sandbox flows', () => {
  let sandbox: Sandbox;
  let entries: RequestInfo[] = [];
  const exits: Record<string, number | null> = {};

  beforeAll(async () => {
    sandbox = await startSandbox({
      clusters: 18,
      dir: mkdtempSync(join(tmpdir(), 'fleetward-perms-')),
      veleroDelays: { backupMs: 50, restoreMs: 50, readyMs: 50 },
    });
    sandbox.log.clear(); // the sandbox's own seeding is no flow
    const config = ['--config', sandbox.configPath, '--log-level', 'error'];
    for (const flow of FLOWS) {
      const run = await runFleetward([
        ...flow,
        ...config,
        ...(flow[0] === 'snapshot' ? ['--out', join(sandbox.dir, 'snap')] : []),
      ]);
      exits[flow.join(' ')] = run.code;
      if (flow[0] === 'backup' && flow[1] === 'run') await new Promise((r) => setTimeout(r, 300));
    }
    entries = [...sandbox.log.entries];
  }, 240_000);
  afterAll(async () => {
    await sandbox?.stop();
    if (sandbox) rmSync(sandbox.dir, { recursive: true, force: true });
  });

  it("ran every flow to completion (0, or 1 for the sandbox's seeded findings)", () => {
    for (const [flow, code] of Object.entries(exits)) expect([0, 1], flow).toContain(code);
    const providers = new Set(entries.flatMap((e) => (callOf(e) ? [`${callOf(e)!.provider}`] : [])));
    expect([...providers].sort()).toEqual(['aws', 'azure', 'gcp', 'kubernetes']);
    // Every request to a cloud or a cluster is named, so none slips past the check unnamed.
    const unnamed = entries.filter((e) => e.cloud !== 'slack' && e.operation !== 'GetHealth' && !callOf(e));
    expect(unnamed.map((e) => `${e.cloud} ${e.service ?? ''} ${e.operation}`)).toEqual([]);
  });

  it('declares a grant for every call the flows made', () => {
    const missing = undeclaredCalls(entries, allGrants());
    const unused = unusedGrants(entries, allGrants());
    console.info(
      `${entries.length} requests, ${new Set(entries.map((e) => callOf(e)?.call)).size} distinct calls; declared grants no flow used (${unused.length}):\n${unused
        .map((g) => `  ${g.provider} ${g.permission} (${g.holder}, ${g.capability}): ${g.calls.join(', ')}`)
        .join('\n')}`,
    );

    expect(missing.map((m) => `${m.provider} ${m.call} (${m.count}x)`)).toEqual([]);
  });

  it('bites: with the grant of eks:ListClusters removed, the check names that call', () => {
    const without = allGrants().filter((g) => !(g.provider === 'aws' && g.permission === 'eks:ListClusters'));

    const missing = undeclaredCalls(entries, without);

    expect(missing.map((m) => m.call)).toEqual(['eks:ListClusters']);
  });
});
