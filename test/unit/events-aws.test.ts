import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseEksEvent } from '../../shared/events/aws.ts';
import { MalformedEventError, UnsupportedEventError } from '../../shared/events/model.ts';

const fixture = (name: string) =>
  JSON.parse(readFileSync(`test/fixtures/events/aws/${name}`, 'utf8')) as Record<string, unknown> & {
    detail: Record<string, unknown>;
  };

const cluster = { cloud: 'aws', scope: '111122223333', region: 'us-west-2', name: 'test' };

describe('parseEksEvent', () => {
  it.each([
    [
      'eks-create-cluster.json',
      'created',
      'CreateCluster',
      'eab22523-174a-499c-9dd6-91e7be3ff8e3',
      { version: '1.10' },
    ],
    ['eks-delete-cluster.json', 'deleted', 'DeleteCluster', '3c1d2e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f', {}],
    [
      'eks-update-cluster-version.json',
      'updated',
      'UpdateClusterVersion',
      '7d8e9f0a-1b2c-4d3e-8f4a-5b6c7d8e9f0a',
      { version: '1.30', updateId: 'b5f0ba18-9a87-4450-b5a0-825e6e84496f' },
    ],
    [
      'eks-tag-resource.json',
      'updated',
      'TagResource',
      '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d',
      { tagKeys: ['cost-center', 'jurisdiction'] },
    ],
  ])('normalises %s to a %s event', (file, type, providerType, id, detail) => {
    // Prepare
    const input = fixture(file);

    // Act
    const event = parseEksEvent(input);

    // Assess
    expect(event).toEqual({
      id,
      source: 'aws',
      type,
      providerType,
      cluster,
      occurredAt: input.detail.eventTime,
      detail,
    });
  });

  it('reads the cluster name from the `name` parameter current records use', () => {
    const input = fixture('eks-create-cluster.json');
    input.detail.requestParameters = { name: 'prod-eu', version: '1.31' };
    input.detail.responseElements = null;

    const event = parseEksEvent(input);

    expect(event.cluster.name).toBe('prod-eu');
    expect(event.detail).toEqual({ version: '1.31' });
  });

  it('falls back to the EventBridge id and time when the record has none', () => {
    const input = fixture('eks-delete-cluster.json');
    delete input.detail.eventID;
    delete input.detail.eventTime;

    const event = parseEksEvent(input);

    expect(event.id).toBe(input.id);
    expect(event.occurredAt).toBe(input.time);
  });

  it.each([
    [
      'a failed call',
      (e: ReturnType<typeof fixture>) => Object.assign(e.detail, { errorCode: 'ResourceInUseException' }),
    ],
    [
      'a read-only call',
      (e: ReturnType<typeof fixture>) => Object.assign(e.detail, { eventName: 'DescribeCluster' }),
    ],
    ['another service', (e: ReturnType<typeof fixture>) => Object.assign(e, { source: 'aws.ec2' })],
    [
      'tags on a node group',
      (e: ReturnType<typeof fixture>) =>
        Object.assign(e.detail, {
          eventName: 'TagResource',
          requestParameters: {
            resourceArn: 'arn:aws:eks:us-west-2:111122223333:nodegroup/test/ng-1/abcd',
            tags: {},
          },
        }),
    ],
  ])('ignores %s as unsupported', (_what, mutate) => {
    const input = fixture('eks-create-cluster.json');
    mutate(input);

    expect(() => parseEksEvent(input)).toThrow(UnsupportedEventError);
  });

  it.each([
    ['no detail-type', (e: ReturnType<typeof fixture>) => delete e['detail-type'], 'detail-type'],
    [
      'no cluster name',
      (e: ReturnType<typeof fixture>) =>
        Object.assign(e.detail, { requestParameters: {}, responseElements: null }),
      'detail.requestParameters.name',
    ],
    ['no event name', (e: ReturnType<typeof fixture>) => delete e.detail.eventName, 'detail.eventName'],
    ['a bad account', (e: ReturnType<typeof fixture>) => Object.assign(e, { account: 'abc' }), 'account'],
    [
      'a foreign ARN',
      (e: ReturnType<typeof fixture>) =>
        Object.assign(e.detail, {
          eventName: 'UntagResource',
          requestParameters: { resourceArn: 'arn:aws:s3:::bucket' },
        }),
      'detail.requestParameters.resourceArn',
    ],
  ])('rejects an event with %s, naming the field', (_what, mutate, field) => {
    const input = fixture('eks-create-cluster.json');
    mutate(input);

    const error = (() => {
      try {
        parseEksEvent(input);
      } catch (e) {
        return e;
      }
    })();

    expect(error).toBeInstanceOf(MalformedEventError);
    expect((error as MalformedEventError).reason.startsWith(`${field}:`)).toBe(true);
  });
});
