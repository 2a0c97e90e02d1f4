/**
 * The Cloud Resource Manager fake answers `projects.get` (v3) as the API does: a `Project`
 * with the documented field names and types (`test/fixtures/events/gcp/crm-project.json`, the
 * REST reference's `Project` with its own example values), whether asked by id or by number,
 * and 403 `PERMISSION_DENIED` in Google's error shape for a project it does not hold.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CrmFake, startCrmFake } from '../sandbox/crm-fake.ts';

const sample = JSON.parse(readFileSync('test/fixtures/events/gcp/crm-project.json', 'utf8')) as Record<
  string,
  unknown
>;

const shape = (value: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(value).map(([k, v]) => [k, Array.isArray(v) ? 'array' : typeof v]));

describe('crm fake (projects.get v3)', () => {
  let crm: CrmFake;
  beforeAll(async () => {
    crm = await startCrmFake({ [String(sample.projectId)]: String(sample.name).replace('projects/', '') });
  });
  afterAll(() => crm.stop());

  it.each([
    ['project id', 'tokyo-rain-123'],
    ['project number', '415104041262'],
  ])('answers by %s with a Project shaped like the documented sample', async (_by, key) => {
    const response = await fetch(`${crm.url}/v3/projects/${key}`);
    const body = (await response.json()) as Record<string, unknown>;

    expect(response.status).toBe(200);
    expect(shape(body)).toEqual(shape(sample));
    expect(body.name).toBe(sample.name);
    expect(body.projectId).toBe(sample.projectId);
    expect(body.state).toBe('ACTIVE');
  });

  it('refuses a project it does not hold with 403 PERMISSION_DENIED', async () => {
    const response = await fetch(`${crm.url}/v3/projects/unknown-project`);
    const body = (await response.json()) as { error: { code: number; status: string; message: string } };

    expect(response.status).toBe(403);
    expect(body.error.status).toBe('PERMISSION_DENIED');
    expect(body.error.code).toBe(403);
  });
});
