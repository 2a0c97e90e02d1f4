/**
 * The EKS exporter's mapping of DescribeSubscriptionFilters and DescribeDeliveryStream answers,
 * on published samples (test/fixtures/aws/audit-export/README.md cites them).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DescribeSubscriptionFiltersCommandOutput } from '@aws-sdk/client-cloudwatch-logs';
import type { DescribeDeliveryStreamCommandOutput } from '@aws-sdk/client-firehose';
import { describe, expect, it } from 'vitest';
import { bucketOfArn, observedOf } from '../../shared/clouds/aws/audit-export.ts';

const fixture = <T>(name: string): T =>
  JSON.parse(
    readFileSync(join(import.meta.dirname, '..', 'fixtures', 'aws', 'audit-export', name), 'utf8'),
  ) as T;

const filters = fixture<DescribeSubscriptionFiltersCommandOutput>('describe-subscription-filters.json');
const stream = fixture<DescribeDeliveryStreamCommandOutput>('describe-delivery-stream.json');
const filter = filters.subscriptionFilters![0]!;

describe('aws audit export mapping (published samples)', () => {
  it('maps a subscription filter and an ACTIVE Direct PUT stream into what the plan diffs', () => {
    const observed = observedOf(filter, stream.DeliveryStreamDescription);

    expect(observed).toEqual({
      name: 'DemoSubscriptionFilter',
      enabled: true,
      destination: 'arn:aws:lambda:us-east-1:123456789012:function:Lambda-Subscription-Filter',
      filter: '%AUTHORIZED%',
      settings: {
        logGroup: 'demo-log-group',
        logsRoleArn: '',
        stream: 'my-delivery-stream',
        bucketArn: 'arn:aws:s3:::amzn-s3-demo-bucket',
        prefix: '',
        errorOutputPrefix: '',
        compression: 'UNCOMPRESSED',
        firehoseRoleArn: 'arn:aws:iam::222222222222:role/FirehosetoS3Role',
      },
      deliveryErrors: [],
    });
    expect(bucketOfArn(observed.settings.bucketArn!)).toBe('amzn-s3-demo-bucket');
  });

  it('reads a stream that is not ACTIVE as not delivering, and its failure description as a delivery error', () => {
    const failed = {
      ...stream.DeliveryStreamDescription!,
      DeliveryStreamStatus: 'CREATING_FAILED' as const,
      FailureDescription: { Type: 'DISABLED_KMS_KEY' as const, Details: "the stream's KMS key is disabled" },
    };

    const observed = observedOf(filter, failed);

    expect(observed.enabled).toBe(false);
    expect(observed.deliveryErrors).toEqual(["DISABLED_KMS_KEY: the stream's KMS key is disabled"]);
  });

  it('reads a subscription whose stream is gone as not delivering, with no destination settings', () => {
    const observed = observedOf(filter, undefined);

    expect(observed.enabled).toBe(false);
    expect(observed.settings.bucketArn).toBe('');
    expect(observed.destination).toBe(filter.destinationArn);
  });
});
