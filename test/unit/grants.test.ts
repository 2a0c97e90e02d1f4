/** The provider-permission table: complete for every function's capabilities, no duplicates, every row explained. */
import { describe, expect, it } from 'vitest';
import {
  allGrants,
  grantOfCall,
  grantsFor,
  grantsOfCall,
  permissionNames,
} from '../../shared/clouds/grants.ts';
import type { PermissionGrant } from '../../shared/clouds/permissions.ts';
import { FUNCTIONS } from '../../shared/deploy/functions.ts';

const rowKey = (g: PermissionGrant) => `${g.provider}|${g.permission}|${g.holder}|${g.capability}`;

describe('permission grants', () => {
  it('declares at least one grant for every capability a function uses', () => {
    const declared = new Set(allGrants().map((g) => g.capability));
    const used = new Set(FUNCTIONS.flatMap((f) => f.capabilities));

    expect([...used].filter((c) => !declared.has(c))).toEqual([]);
  });

  it('declares no (provider, permission, holder, capability) row twice', () => {
    const seen = new Map<string, number>();
    for (const g of allGrants()) seen.set(rowKey(g), (seen.get(rowKey(g)) ?? 0) + 1);

    expect([...seen].filter(([, n]) => n > 1).map(([k]) => k)).toEqual([]);
  });

  it('explains every grant and names its calls', () => {
    const bad = allGrants().filter(
      (g) => g.why.trim() === '' || g.calls.length === 0 || g.calls.some((c) => c.trim() === ''),
    );

    expect(bad.map(rowKey)).toEqual([]);
  });

  it('names AWS permissions as IAM actions and AWS calls as <service>:<Operation>', () => {
    const aws = allGrants().filter((g) => g.provider === 'aws');

    expect(aws.filter((g) => !/^[a-z0-9-]+:[A-Z][A-Za-z]+$/.test(g.permission)).map(rowKey)).toEqual([]);
    expect(aws.flatMap((g) => g.calls).filter((c) => !/^[a-z0-9-]+:[A-Z][A-Za-z]+$/.test(c))).toEqual([]);
  });

  it('never gives an internet-facing function sts:AssumeRole or evidence writes', () => {
    const facing = FUNCTIONS.filter((f) => f.internetFacing);
    const held = facing.flatMap((f) => permissionNames(grantsFor(f.capabilities, 'aws', 'function')));

    expect(facing.length).toBeGreaterThan(0);
    expect(held).not.toContain('sts:AssumeRole');
    expect(held).not.toContain('s3:PutObject');
  });

  it('finds the grant of a call, and none for a call nobody declares', () => {
    expect(grantOfCall('aws', 'eks:ListClusters')?.permission).toBe('eks:ListClusters');
    expect(grantOfCall('aws', 'logs:FilterLogEvents')).toMatchObject({
      holder: 'member',
      capability: 'audit-read',
    });
    expect(permissionNames(grantsOfCall('aws', 's3:GetObject'))).toEqual([
      's3:GetObject',
      's3:GetObjectVersion',
    ]);
    expect(grantOfCall('kubernetes', 'create velero.io/backups')?.permission).toBe(
      'velero.io/backups:create',
    );
    expect(grantOfCall('aws', 'eks:DeleteCluster')).toBeUndefined();
    expect(grantOfCall('gcp', 'eks:ListClusters')).toBeUndefined();
  });

  it('selects grants by capability, provider and holder', () => {
    const discover = FUNCTIONS.find((f) => f.name === 'discover-clusters')!;
    const own = permissionNames(grantsFor(discover.capabilities, 'aws', 'function'));
    const member = permissionNames(grantsFor(discover.capabilities, 'aws', 'member'));

    expect(own).toContain('sts:AssumeRole');
    expect(own).toContain('dynamodb:GetItem');
    expect(own).not.toContain('eks:ListClusters');
    expect(member).toEqual(['ec2:DescribeRegions', 'eks:DescribeCluster', 'eks:ListClusters']);
  });
});
