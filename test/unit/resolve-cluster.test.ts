import { describe, expect, it } from 'vitest';
import { resolveCluster, UnknownClusterError } from '../../shared/jobs/fleet.ts';
import type { Cluster } from '../../shared/model.ts';
import { auditCluster } from './audit-builders.ts';

const cluster = (id: string): Cluster => ({ ...auditCluster, id, name: id.split('/').at(-1) as string });
const FLEET = [
  cluster('aws/111111111111/eu-central-1/ml-prod-0005'),
  cluster('aws/111111111111/ap-south-1/payments'),
  cluster('gcp/payments-prod-eu/europe-west3/payments'),
  cluster('azure/00000000-0000-0000-0000-00000000a001/southafricanorth/shop'),
];

const refused = (ref: string): UnknownClusterError => {
  try {
    resolveCluster(FLEET, ref);
  } catch (error) {
    if (error instanceof UnknownClusterError) return error;
    throw error;
  }
  throw new Error(`"${ref}" resolved`);
};

describe('--cluster', () => {
  it('takes an id, or a short name that names one cluster', () => {
    expect(resolveCluster(FLEET, 'gcp/payments-prod-eu/europe-west3/payments').id).toBe(
      'gcp/payments-prod-eu/europe-west3/payments',
    );
    expect(resolveCluster(FLEET, 'ml-prod-0005').id).toBe('aws/111111111111/eu-central-1/ml-prod-0005');
  });

  it('refuses a short name two clusters share, listing both ids', () => {
    const error = refused('payments');

    expect(error.message).toMatch(/"payments" is ambiguous/);
    expect(error.candidates).toEqual([
      'aws/111111111111/ap-south-1/payments',
      'gcp/payments-prod-eu/europe-west3/payments',
    ]);
  });

  it('suggests near matches for a typo, and none for something unlike any cluster', () => {
    expect(refused('ml-prod-0006').candidates).toEqual(['aws/111111111111/eu-central-1/ml-prod-0005']);
    expect(refused('aws/111111111111/eu-central-1/ml-prod-005').candidates).toEqual([
      'aws/111111111111/eu-central-1/ml-prod-0005',
    ]);
    expect(refused('nothing-like-it-at-all').candidates).toEqual([]);
  });
});
