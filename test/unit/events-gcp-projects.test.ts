/**
 * GKE cluster notifications name the project by its number (`project_id` attribute, e.g.
 * `123456789` in the docs' sample); Fleetward's config and inventory use project ids. The
 * number is mapped to a configured project: from the config's `number`, else resolved once
 * through Cloud Resource Manager (`projects.get`, the local fake here) and cached.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createProjectDirectory } from '../../shared/clouds/gcp/projects.ts';
import { GcpConfig } from '../../shared/config/schema.ts';
import { normalisePushMessage, parsePushBody } from '../../shared/events/gcp.ts';
import { withProjectIds } from '../../shared/jobs/cluster-event.ts';
import { CloudApiError } from '../../shared/runtime/errors.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { type CrmFake, startCrmFake } from '../sandbox/crm-fake.ts';

const read = (name: string) => JSON.parse(readFileSync(`test/fixtures/events/gcp/${name}`, 'utf8'));

/** The docs' UpgradeAvailableEvent: its `project_id` attribute is the project number 123456789. */
const upgradeAvailable = () =>
  normalisePushMessage(parsePushBody(read('notification-upgrade-available.json')));

function gcpConfig(crm: CrmFake, projects: { id: string; number?: string }[]) {
  return GcpConfig.parse({ insecure: true, resourceManagerEndpoint: crm.url, maxAttempts: 2, projects });
}

describe('gcp project numbers', () => {
  let crm: CrmFake;
  beforeEach(async () => {
    crm = await startCrmFake({ 'example-project': '123456789', 'other-project': '222222222222' });
  });
  afterEach(() => crm.stop());

  it('maps the number of a GKE notification to the configured project id without a lookup when the config gives it', async () => {
    // Prepare
    const directory = createProjectDirectory(
      gcpConfig(crm, [{ id: 'example-project', number: '123456789' }]),
      {
        logger: silentLogger,
      },
    );

    // Act
    const { events, unknown } = await withProjectIds([upgradeAvailable()], directory);

    // Assess
    expect(events.map((e) => e.cluster.scope)).toEqual(['example-project']);
    expect(events[0]!.detail.projectNumber).toBe('123456789');
    expect(unknown).toEqual([]);
    expect(crm.requests()).toEqual([]);
  });

  it('resolves the numbers of configured projects once through Cloud Resource Manager and caches them', async () => {
    // Prepare
    const directory = createProjectDirectory(
      gcpConfig(crm, [{ id: 'other-project' }, { id: 'example-project' }]),
      {
        logger: silentLogger,
      },
    );

    // Act
    const first = await withProjectIds([upgradeAvailable()], directory);
    const second = await withProjectIds([upgradeAvailable(), upgradeAvailable()], directory);

    // Assess
    expect(first.events.map((e) => e.cluster.scope)).toEqual(['example-project']);
    expect(second.events.map((e) => e.cluster.scope)).toEqual(['example-project', 'example-project']);
    expect([...crm.requests()].sort()).toEqual([
      '/v3/projects/example-project',
      '/v3/projects/other-project',
    ]);
  });

  it('leaves project ids alone and asks nothing', async () => {
    // Prepare
    const directory = createProjectDirectory(gcpConfig(crm, [{ id: 'example-project' }]), {
      logger: silentLogger,
    });
    const event = {
      ...upgradeAvailable(),
      cluster: { ...upgradeAvailable().cluster, scope: 'example-project' },
    };

    // Act
    const { events } = await withProjectIds([event], directory);

    // Assess
    expect(events).toEqual([event]);
    expect(crm.requests()).toEqual([]);
  });

  it('reports a number that belongs to no configured project, asking only about configured projects', async () => {
    // Prepare
    const directory = createProjectDirectory(gcpConfig(crm, [{ id: 'other-project' }]), {
      logger: silentLogger,
    });

    // Act
    const { events, unknown } = await withProjectIds([upgradeAvailable()], directory);
    await withProjectIds([upgradeAvailable()], directory);

    // Assess
    expect(events).toEqual([]);
    expect(unknown.map((e) => e.cluster.scope)).toEqual(['123456789']);
    expect(crm.requests()).toEqual(['/v3/projects/other-project']);
  });

  it('rejects with a CloudApiError when Cloud Resource Manager refuses, and asks again next time', async () => {
    // Prepare: the configured project is unknown to Resource Manager (403 PERMISSION_DENIED)
    const directory = createProjectDirectory(gcpConfig(crm, [{ id: 'missing-project' }]), {
      logger: silentLogger,
    });

    // Act
    const error = await withProjectIds([upgradeAvailable()], directory).catch((e: unknown) => e);
    crm.setProject('missing-project', '123456789');
    const retried = await withProjectIds([upgradeAvailable()], directory);

    // Assess
    expect(error).toBeInstanceOf(CloudApiError);
    expect((error as CloudApiError).status).toBe(403);
    expect((error as CloudApiError).message).toContain('missing-project');
    expect(retried.events.map((e) => e.cluster.scope)).toEqual(['missing-project']);
  });
});

describe('gcp project number config', () => {
  it.each([
    ['a number with letters', { id: 'example-project', number: '12ab' }],
    ['a project id in place of a number', { id: 'example-project', number: 'example-project' }],
  ])('refuses %s, naming the field', (_what, project) => {
    const result = GcpConfig.safeParse({ projects: [project] });

    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['projects', 0, 'number']);
    expect(result.error?.issues[0]?.message).toBe('expected a GCP project number (digits only)');
  });

  it('accepts the number written as a YAML integer', () => {
    const result = GcpConfig.parse({ projects: [{ id: 'example-project', number: 123456789 }] });

    expect(result.projects[0]?.number).toBe('123456789');
  });

  it('refuses two projects with the same number', () => {
    const result = GcpConfig.safeParse({
      projects: [
        { id: 'example-project', number: '123456789' },
        { id: 'other-project', number: '123456789' },
      ],
    });

    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['projects', 1, 'number']);
  });
});
