/**
 * The sink mapping of the GKE exporter and the logging fake's `projects.sinks` answers against
 * recorded `LogSink` resources of the Cloud Logging API v2 (test/fixtures/gcp-export/README.md):
 * - `toObserved` reads a recorded sink as an `ExportObserved` (proto3 JSON: no `disabled`
 *   means enabled, no `filter` means every entry);
 * - the fake answers `sinks.create` / `sinks.get` with the recorded fields and types, plus only
 *   fields the reference lists.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toObserved } from '../../shared/clouds/gcp/audit-export.ts';
import { CloudApiError } from '../../shared/runtime/errors.ts';
import { type LoggingFake, startLoggingFake } from '../sandbox/logging-fake.ts';
import { shapeOf } from './json-shape.ts';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/gcp-export/logsinks-list.json', import.meta.url), 'utf8'),
) as { sinks: Record<string, unknown>[] };
const [unfiltered, filtered] = fixture.sinks as [Record<string, unknown>, Record<string, unknown>];
/** Output fields the reference lists that the 2019 recording predates or leaves at their default. */
const REFERENCE_EXTRAS = new Set(['resourceName', 'description', 'disabled', 'filter', 'includeChildren']);

let fake: LoggingFake;
beforeAll(async () => {
  fake = await startLoggingFake();
});
afterAll(async () => {
  await fake?.stop();
});

describe('log sink mapping', () => {
  it('reads a recorded cloud storage sink with a filter', () => {
    expect(toObserved(filtered)).toEqual({
      name: 'testexport11',
      enabled: true,
      destination: 'storage.googleapis.com/bbbucket12324536',
      filter: filtered.filter,
      settings: {
        writerIdentity: 'serviceAccount:p123456789012-910275@gcp-sa-logging.iam.gserviceaccount.com',
      },
      deliveryErrors: [],
    });
  });

  it('reads a recorded sink without a filter as exporting everything, and disabled as not enabled', () => {
    expect(toObserved(unfiltered)).toMatchObject({ filter: '', enabled: true });
    expect(toObserved({ ...unfiltered, disabled: true }).enabled).toBe(false);
  });

  it('refuses an answer that is not a sink', () => {
    expect(() => toObserved({ error: { code: 404 } })).toThrow(CloudApiError);
  });
});

describe('logging fake sinks', () => {
  it('answers create and get with the recorded fields and types', async () => {
    const create = await fetch(
      `${fake.endpoint}/v2/projects/example-project/sinks?uniqueWriterIdentity=true`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'testexport11', destination: filtered.destination }),
      },
    );
    const get = await fetch(`${fake.endpoint}/v2/projects/example-project/sinks/testexport11`);
    const created = (await create.json()) as Record<string, unknown>;
    const got = (await get.json()) as Record<string, unknown>;

    expect([create.status, get.status]).toEqual([200, 200]);
    expect(got).toEqual(created);
    const want = shapeOf(unfiltered);
    const have = shapeOf(got);
    for (const [path, type] of want) expect(have.get(path), path).toBe(type);
    expect([...have.keys()].filter((k) => !want.has(k) && !REFERENCE_EXTRAS.has(k))).toEqual([]);
    expect(got.writerIdentity).toMatch(
      /^serviceAccount:p\d{12}-\d{6}@gcp-sa-logging\.iam\.gserviceaccount\.com$/,
    );
    expect(got.createTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    expect('disabled' in got).toBe(false);
  });

  it('answers 404 NOT_FOUND for a sink that does not exist and 409 for a taken name', async () => {
    const missing = await fetch(`${fake.endpoint}/v2/projects/example-project/sinks/nope`);
    const again = await fetch(`${fake.endpoint}/v2/projects/example-project/sinks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'testexport11', destination: filtered.destination }),
    });

    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { status: string } }).error.status).toBe('NOT_FOUND');
    expect(again.status).toBe(409);
    expect(((await again.json()) as { error: { status: string } }).error.status).toBe('ALREADY_EXISTS');
  });

  it('refuses to turn a unique writer identity back into the shared one, and an unknown mask field', async () => {
    const url = `${fake.endpoint}/v2/projects/example-project/sinks/testexport11`;
    const put = (query: string) =>
      fetch(`${url}?${query}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ destination: filtered.destination, disabled: true }),
      });

    expect((await put('updateMask=disabled')).status).toBe(400);
    expect((await put('updateMask=writerIdentity&uniqueWriterIdentity=true')).status).toBe(400);
    expect((await put('updateMask=disabled&uniqueWriterIdentity=true')).status).toBe(200);
  });
});
