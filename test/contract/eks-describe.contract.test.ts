/**
 * Contract: moto's DescribeCluster answer uses the field names, nesting and wire types of
 * the EKS API reference (fixture: the documented response shape with placeholder values),
 * and the adapter's normaliser reads the documented sample, moto's raw wire JSON and the
 * SDK's output alike.
 */
import { Readable } from 'node:stream';
import { CreateClusterCommand, DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normaliseCluster } from '../../shared/clouds/aws/discovery.ts';
import fixture from '../fixtures/aws/eks-describe-cluster.json' with { type: 'json' };
import { type MotoServer, startMoto } from '../sandbox/moto.ts';
import { shapeOf } from './json-shape.ts';

/** Keeps a copy of every response body the SDK receives. */
class CapturingHandler extends NodeHttpHandler {
  readonly bodies: string[] = [];
  override async handle(
    ...args: Parameters<NodeHttpHandler['handle']>
  ): ReturnType<NodeHttpHandler['handle']> {
    const out = await super.handle(...args);
    const chunks: Buffer[] = [];
    for await (const chunk of out.response.body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
    const body = Buffer.concat(chunks);
    this.bodies.push(body.toString('utf8'));
    out.response.body = Readable.from([body]);
    return out;
  }
}

/** The fields the EKS API reference documents for `DescribeCluster.cluster` that Fleetward relies on or checks. */
const DOCUMENTED: Record<string, string> = {
  'cluster.name': 'string',
  'cluster.arn': 'string',
  'cluster.createdAt': 'number',
  'cluster.version': 'string',
  'cluster.endpoint': 'string',
  'cluster.roleArn': 'string',
  'cluster.resourcesVpcConfig': 'object',
  'cluster.resourcesVpcConfig.subnetIds[]': 'string',
  'cluster.resourcesVpcConfig.securityGroupIds[]': 'string',
  'cluster.resourcesVpcConfig.clusterSecurityGroupId': 'string',
  'cluster.resourcesVpcConfig.vpcId': 'string',
  'cluster.resourcesVpcConfig.endpointPublicAccess': 'boolean',
  'cluster.resourcesVpcConfig.endpointPrivateAccess': 'boolean',
  'cluster.resourcesVpcConfig.publicAccessCidrs[]': 'string',
  'cluster.kubernetesNetworkConfig': 'object',
  'cluster.logging.clusterLogging[].types[]': 'string',
  'cluster.logging.clusterLogging[].enabled': 'boolean',
  'cluster.identity.oidc.issuer': 'string',
  'cluster.status': 'string',
  'cluster.certificateAuthority.data': 'string',
  'cluster.platformVersion': 'string',
  'cluster.tags': 'object',
  'cluster.encryptionConfig[].resources[]': 'string',
  'cluster.encryptionConfig[].provider.keyArn': 'string',
};

/**
 * Documented output-only fields moto 5.2.1 does not produce (EKS creates these itself).
 * If moto starts sending them, this list must shrink: the test says so.
 */
const MOTO_GAPS = ['cluster.resourcesVpcConfig.clusterSecurityGroupId', 'cluster.resourcesVpcConfig.vpcId'];

const ACCOUNT = '123456789012'; // moto's default account for the `testing` credentials
const KEY_ARN = `arn:aws:kms:eu-central-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

let moto: MotoServer;
let handler: CapturingHandler;
let raw: { cluster: Record<string, unknown> };
let sdkCluster: unknown;

beforeAll(async () => {
  moto = await startMoto();
  handler = new CapturingHandler();
  const eks = new EKSClient({ region: 'eu-central-1', endpoint: moto.url, requestHandler: handler });
  await eks.send(
    new CreateClusterCommand({
      name: 'contract',
      version: '1.31',
      roleArn: `arn:aws:iam::${ACCOUNT}:role/eks-cluster-role`,
      resourcesVpcConfig: {
        subnetIds: ['subnet-0example1111aaaa1', 'subnet-0example2222bbbb2'],
        securityGroupIds: ['sg-0example3333cccc3'],
        endpointPublicAccess: true,
        endpointPrivateAccess: true,
        publicAccessCidrs: ['203.0.113.0/24'],
      },
      kubernetesNetworkConfig: { serviceIpv4Cidr: '10.100.0.0/16', ipFamily: 'ipv4' },
      logging: {
        clusterLogging: [
          { types: ['api', 'audit'], enabled: true },
          { types: ['scheduler'], enabled: false },
        ],
      },
      tags: { team: 'platform' },
      encryptionConfig: [{ resources: ['secrets'], provider: { keyArn: KEY_ARN } }],
    }),
  );
  const before = handler.bodies.length;
  sdkCluster = (await eks.send(new DescribeClusterCommand({ name: 'contract' }))).cluster;
  raw = JSON.parse(handler.bodies[before]!);
  eks.destroy();
});

afterAll(async () => {
  await moto?.stop();
});

describe('EKS DescribeCluster contract', () => {
  it('the fixture carries every documented field with its documented type', () => {
    const shape = shapeOf(fixture);
    for (const [path, type] of Object.entries(DOCUMENTED))
      expect([path, shape.get(path)]).toEqual([path, type]);
  });

  it("moto's wire answer uses only documented names, nesting and types", () => {
    const documented = shapeOf(fixture);
    const undocumented = [...shapeOf(raw)].filter(([path, type]) => documented.get(path) !== type);
    expect(undocumented).toEqual([]);
  });

  it('moto answers every documented field but its known gaps', () => {
    const motoShape = shapeOf(raw);
    const missing = Object.keys(DOCUMENTED).filter((path) => !motoShape.has(path));
    expect(missing).toEqual(MOTO_GAPS);
  });

  it('createdAt is epoch seconds on the wire and a Date from the SDK', () => {
    expect(typeof raw.cluster.createdAt).toBe('number');
    expect((sdkCluster as { createdAt: unknown }).createdAt).toBeInstanceOf(Date);
    expect((sdkCluster as { createdAt: Date }).createdAt.getTime()).toBe(
      Math.round((raw.cluster.createdAt as number) * 1000),
    );
  });

  it('normalises the documented sample', () => {
    expect(normaliseCluster(fixture.cluster, { account: '111122223333', region: 'eu-central-1' })).toEqual({
      id: 'aws/111122223333/eu-central-1/prod-eu',
      cloud: 'aws',
      scope: '111122223333',
      region: 'eu-central-1',
      name: 'prod-eu',
      kubernetesVersion: '1.31',
      endpoint: 'https://EXAMPLE0123456789ABCDEF0123456789AB.gr7.eu-central-1.eks.amazonaws.com',
      endpointAccess: 'public-and-private',
      secretsEncryptionKey: 'arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      auditLogging: true,
      tags: { team: 'platform', env: 'prod' },
      status: 'running',
      providerStatus: 'ACTIVE',
      createdAt: '2024-06-10T06:13:20.123Z',
    });
  });

  it("normalises moto's wire JSON and the SDK's output identically", () => {
    const where = { account: ACCOUNT, region: 'eu-central-1' };
    const fromWire = normaliseCluster(raw.cluster, where);
    expect(normaliseCluster(sdkCluster, where)).toEqual(fromWire);
    expect(fromWire).toMatchObject({
      id: `aws/${ACCOUNT}/eu-central-1/contract`,
      kubernetesVersion: '1.31',
      endpointAccess: 'public-and-private',
      secretsEncryptionKey: KEY_ARN,
      auditLogging: true,
      tags: { team: 'platform' },
      status: 'running',
    });
  });

  it.each([
    ['not an object', null, 'cluster payload is not an object'],
    ['no name', { ...fixture.cluster, name: undefined }, 'cluster payload lacks name'],
    ['no arn or status', { name: 'x' }, 'cluster payload lacks arn, status'],
  ])('rejects a payload with %s', (_, payload, message) => {
    expect(() => normaliseCluster(payload, { account: '111122223333', region: 'eu-central-1' })).toThrow(
      message,
    );
  });

  it.each([
    ['CREATING', 'provisioning'],
    ['PENDING', 'provisioning'],
    ['UPDATING', 'updating'],
    ['DELETING', 'deleting'],
    ['FAILED', 'failed'],
    ['SOMETHING_NEW', 'unknown'],
  ])('maps status %s to %s, keeping the provider word', (providerStatus, status) => {
    const c = normaliseCluster(
      { ...fixture.cluster, status: providerStatus },
      { account: '111122223333', region: 'x' },
    );
    expect(c).toMatchObject({ status, providerStatus });
  });
});
