/** The pure parts of the GKE exporter: sink names, filter, destination and the permissions it declares. */
import { describe, expect, it } from 'vitest';
import {
  bucketOfDestination,
  PERMISSIONS,
  SINK_NAME_PREFIX,
  sinkDestination,
  sinkFilter,
  sinkName,
} from '../../shared/clouds/gcp/audit-export.ts';
import { allGrants, grantsFor, permissionNames } from '../../shared/clouds/grants.ts';
import { memberGrants } from '../../shared/deploy/onboard/common.ts';

/** The sink name rule of the API reference: at most 100 of `[A-Za-z0-9_.-]`, alphanumeric first. */
const SINK_NAME_RULE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

describe('gke audit sink names', () => {
  it.each([
    [{ name: 'prod-eu', region: 'europe-west3' }, 'fleetward-audit-prod-eu-europe-west3'],
    [{ name: 'zonal', region: 'europe-west3-a' }, 'fleetward-audit-zonal-europe-west3-a'],
  ])('names %o %s', (cluster, want) => {
    expect(sinkName(cluster)).toBe(want);
    expect(sinkName(cluster)).toMatch(SINK_NAME_RULE);
  });

  it('keeps a long name within 100 characters and distinct from its neighbour', () => {
    const long = { name: `c${'x'.repeat(110)}`, region: 'europe-west3' };
    const other = { name: `c${'x'.repeat(109)}y`, region: 'europe-west3' };

    expect(sinkName(long)).toMatch(SINK_NAME_RULE);
    expect(sinkName(long).startsWith(SINK_NAME_PREFIX)).toBe(true);
    expect(sinkName(long)).not.toBe(sinkName(other));
  });

  it('replaces characters the api refuses', () => {
    expect(sinkName({ name: 'a b/c', region: 'europe-west3' })).toBe('fleetward-audit-a-b-c-europe-west3');
  });
});

describe('gke audit sink filter and destination', () => {
  it('quotes names in the filter', () => {
    expect(sinkFilter({ name: 'we"ird', region: 'europe-west3' })).toContain(
      'resource.labels.cluster_name="we\\"ird"',
    );
  });

  it('round-trips a bucket through the destination and refuses anything else', () => {
    expect(bucketOfDestination(sinkDestination('fleetward-evidence-eu'))).toBe('fleetward-evidence-eu');
    expect(bucketOfDestination('bigquery.googleapis.com/projects/p/datasets/d')).toBeUndefined();
    expect(bucketOfDestination('storage.googleapis.com/')).toBeUndefined();
    expect(bucketOfDestination('storage.googleapis.com/Bad_Bucket/path')).toBeUndefined();
  });
});

describe('gke audit export permissions', () => {
  it('declares the sink and bucket permissions under audit-export, so the gcp custom role carries them', () => {
    const names = permissionNames(grantsFor(['audit-export'], 'gcp', 'member'));

    expect(names).toEqual([
      'logging.sinks.create',
      'logging.sinks.get',
      'logging.sinks.update',
      'storage.buckets.get',
    ]);
    // The GCP custom role (`fleetward onboard gcp`) is made of every member grant of gcp.
    expect(permissionNames(memberGrants(allGrants(), 'gcp'))).toEqual(expect.arrayContaining(names));
    expect(PERMISSIONS.flatMap((g) => g.calls)).toEqual([
      'logging:sinks.get',
      'logging:sinks.create',
      'logging:sinks.update',
      'storage:buckets.get',
    ]);
  });
});
