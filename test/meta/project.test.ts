/**
 * Meta tests (Custodian's PolicyMetaLint): the project's parts agree with each other —
 * every function folder has a serverless.yml entry and vice versa, names match everywhere,
 * IAM never grants `*` actions, jobs never import a cloud SDK, schedule inputs fit schemas.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLOUDS } from '../../shared/model.ts';

/** serverless.yml with CloudFormation short-form tags (!Ref, !GetAtt) read as plain values. */
function readServerless() {
  const customTags = ['Ref', 'GetAtt', 'Sub', 'Join', 'If'].map((tag) => ({
    tag: `!${tag}`,
    resolve: (value: unknown) => ({ [tag]: value }),
  }));
  return parse(readFileSync('serverless.yml', 'utf8'), { customTags }) as {
    functions: Record<
      string,
      { handler: string; events?: string | unknown[]; environment?: Record<string, string> }
    >;
    provider: { runtime: string; iam?: unknown };
  };
}

const functionDirs = readdirSync('functions', { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('project layout', () => {
  const sls = readServerless();

  it('has a serverless.yml entry for every function folder and a folder for every entry', () => {
    expect(Object.keys(sls.functions).sort()).toEqual(functionDirs);
  });

  it.each(functionDirs)('%s uses one kebab-case name everywhere', (name) => {
    const fn = sls.functions[name]!;

    expect(name).toMatch(/^[a-z]+(-[a-z]+)*$/);
    expect(fn.handler).toBe(`functions/${name}/handler.handler`);
    expect(fn.environment?.POWERTOOLS_SERVICE_NAME).toBe(name);
    expect(existsSync(join('functions', name, 'schema.ts'))).toBe(true);
    // Scheduled functions pull their events from schedules/<name>.yml; event-triggered ones declare them inline.
    if (typeof fn.events === 'string') {
      expect(fn.events).toBe(`\${file(schedules/${name}.yml)}`);
      expect(existsSync(join('schedules', `${name}.yml`))).toBe(true);
    }
  });

  it.each(functionDirs)('%s accepts its schedule input and sample event', async (name) => {
    const { [Object.keys(await import(`../../functions/${name}/schema.ts`))[0]!]: schema } = await import(
      `../../functions/${name}/schema.ts`
    );
    const schedule = join('schedules', `${name}.yml`);
    const inputs = existsSync(schedule)
      ? (parse(readFileSync(schedule, 'utf8')) as { schedule?: { input?: unknown } }[]).map(
          (e) => e.schedule?.input,
        )
      : [];
    const sample = join('functions', name, 'event.json');
    if (existsSync(sample)) inputs.push(JSON.parse(readFileSync(sample, 'utf8')));

    expect(inputs.length).toBeGreaterThan(0);
    for (const input of inputs) expect(() => schema.parse(input)).not.toThrow();
    expect(() => schema.parse({ unexpected: true })).toThrow();
  });

  it('targets the nodejs24.x runtime', () => {
    expect(sls.provider.runtime).toBe('nodejs24.x');
  });

  it('has no provider-wide IAM role: every function gets its own, generated from FUNCTIONS', async () => {
    const { FUNCTIONS } = await import('../../shared/deploy/functions.ts');

    expect(sls.provider.iam).toBeUndefined();
    expect(FUNCTIONS.map((f) => f.name).sort()).toEqual(functionDirs);
  });
});

describe('rooms', () => {
  const sources = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((f) => f.isFile() && f.name.endsWith('.ts'))
      .map((f) => join(f.parentPath, f.name));

  it('keeps cloud SDKs out of jobs, config, residency and runtime', () => {
    const offenders = ['shared/jobs', 'shared/config', 'shared/residency', 'shared/runtime']
      .flatMap(sources)
      .filter((file) =>
        /from '(@aws-sdk|@google-cloud|@azure|@kubernetes|google-gax)/.test(readFileSync(file, 'utf8')),
      );

    expect(offenders).toEqual([]);
  });

  it.each(CLOUDS)('has a %s discovery adapter exporting createDiscovery', async (cloud) => {
    const adapter = await import(`../../shared/clouds/${cloud}/discovery.ts`);

    expect(typeof adapter.createDiscovery).toBe('function');
  });
});

describe('compliance snapshot schema', () => {
  it('publishes the JSON Schema the code generates (regenerate: npx fleetward snapshot --schema)', async () => {
    const { snapshotJsonSchema } = await import('../../shared/compliance/schema.ts');
    const published = JSON.parse(readFileSync('shared/compliance/snapshot.schema.json', 'utf8'));

    expect(published).toEqual(snapshotJsonSchema());
  });
});
