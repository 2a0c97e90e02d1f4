/**
 * EKS control-plane changes as EventBridge delivers them: `detail-type: AWS API Call via
 * CloudTrail`, `source: aws.eks`, the CloudTrail record in `detail`.
 */
import { EventBridgeSchema } from '@aws-lambda-powertools/parser/schemas/eventbridge';
import { z } from 'zod';
import {
  type ClusterEvent,
  type ClusterEventType,
  compact,
  isRecord,
  MalformedEventError,
  parseOrMalformed,
  str,
  UnsupportedEventError,
} from './model.ts';

/** The EKS API calls that change a cluster and therefore trigger a rediscovery. */
export const EKS_EVENT_NAMES = [
  'CreateCluster',
  'DeleteCluster',
  'UpdateClusterConfig',
  'UpdateClusterVersion',
  'TagResource',
  'UntagResource',
  'AssociateEncryptionConfig',
] as const;
export type EksEventName = (typeof EKS_EVENT_NAMES)[number];

const TYPES: Record<EksEventName, ClusterEventType> = {
  CreateCluster: 'created',
  DeleteCluster: 'deleted',
  UpdateClusterConfig: 'updated',
  UpdateClusterVersion: 'updated',
  TagResource: 'updated',
  UntagResource: 'updated',
  AssociateEncryptionConfig: 'updated',
};

const Params = z.record(z.string(), z.unknown()).nullish();

/** The CloudTrail record fields Fleetward reads (others pass through untouched). */
export const CloudTrailDetailSchema = z.looseObject({
  eventVersion: z.string().optional(),
  eventID: z.string().min(1).optional(),
  eventTime: z.iso.datetime({ offset: true }).optional(),
  eventSource: z.string().min(1),
  eventName: z.string().min(1),
  awsRegion: z.string().optional(),
  recipientAccountId: z.string().optional(),
  errorCode: z.string().optional(),
  requestParameters: Params,
  responseElements: Params,
});

/** An EventBridge "AWS API Call via CloudTrail" event with the CloudTrail record as `detail`. */
export const EksCloudTrailEventSchema = EventBridgeSchema.extend({ detail: CloudTrailDetailSchema });
export type EksCloudTrailEvent = z.infer<typeof EksCloudTrailEventSchema>;

const CLUSTER_ARN = /^arn:aws[a-z-]*:eks:([a-z0-9-]+):(\d{12}):cluster\/([A-Za-z0-9][A-Za-z0-9_-]*)$/;

function isEksEventName(name: string): name is EksEventName {
  return (EKS_EVENT_NAMES as readonly string[]).includes(name);
}

/** The cluster ARN of TagResource/UntagResource; CloudTrail may record the path parameter URL-encoded. */
function clusterFromArn(raw: string, eventName: string) {
  let arn = raw;
  try {
    arn = decodeURIComponent(raw);
  } catch {
    throw new MalformedEventError('detail.requestParameters.resourceArn: expected an ARN');
  }
  const match = CLUSTER_ARN.exec(arn);
  if (!match) {
    if (/^arn:aws[a-z-]*:eks:/.test(arn)) {
      throw new UnsupportedEventError(`${eventName} on an eks resource that is not a cluster`, eventName);
    }
    throw new MalformedEventError('detail.requestParameters.resourceArn: expected an eks cluster ARN');
  }
  return { region: match[1]!, account: match[2]!, name: match[3]! };
}

/** The cluster name: the `name` path parameter (older records: `clusterName`), else the response. */
function clusterName(detail: EksCloudTrailEvent['detail']): string {
  const request = detail.requestParameters ?? {};
  const cluster = isRecord(detail.responseElements?.cluster) ? detail.responseElements.cluster : {};
  const name = str(request.name) ?? str(request.clusterName) ?? str(cluster.name) ?? str(cluster.clusterName);
  if (!name) throw new MalformedEventError('detail.requestParameters.name: expected the cluster name');
  return name;
}

function detailOf(name: EksEventName, detail: EksCloudTrailEvent['detail']): Record<string, unknown> {
  const request = detail.requestParameters ?? {};
  const cluster = isRecord(detail.responseElements?.cluster) ? detail.responseElements.cluster : {};
  const update = isRecord(detail.responseElements?.update) ? detail.responseElements.update : {};
  switch (name) {
    case 'CreateCluster':
      return compact({ version: str(request.version) ?? str(cluster.version) });
    case 'UpdateClusterVersion':
      return compact({ version: str(request.version), updateId: str(update.id) });
    case 'UpdateClusterConfig':
    case 'AssociateEncryptionConfig':
      return compact({ updateId: str(update.id) });
    case 'TagResource':
      return { tagKeys: isRecord(request.tags) ? Object.keys(request.tags).sort() : [] };
    case 'UntagResource': {
      const keys = request.tagKeys;
      return { tagKeys: Array.isArray(keys) ? keys.filter((k) => typeof k === 'string').sort() : [] };
    }
    default:
      return {};
  }
}

/**
 * Normalises one EventBridge event carrying an EKS CloudTrail record.
 *
 * Throws `MalformedEventError` when the envelope or the record lacks a field it needs,
 * `UnsupportedEventError` for other sources, other API calls and failed calls (`errorCode`
 * set: nothing changed).
 */
export function parseEksEvent(input: unknown): ClusterEvent {
  const envelope = parseOrMalformed(EventBridgeSchema, input);
  if (envelope.source !== 'aws.eks' || envelope['detail-type'] !== 'AWS API Call via CloudTrail') {
    throw new UnsupportedEventError(
      'not an eks api call recorded by cloudtrail',
      `${envelope.source}/${envelope['detail-type']}`,
    );
  }
  const event = parseOrMalformed(EksCloudTrailEventSchema, input);
  const { detail } = event;
  if (!isEksEventName(detail.eventName)) {
    throw new UnsupportedEventError('eks api call that does not change a cluster', detail.eventName);
  }
  if (detail.errorCode !== undefined) {
    throw new UnsupportedEventError('failed eks api call: nothing changed', detail.eventName);
  }

  let account = event.account || detail.recipientAccountId || '';
  let region = event.region || detail.awsRegion || '';
  let name: string;
  if (detail.eventName === 'TagResource' || detail.eventName === 'UntagResource') {
    const arn = str(detail.requestParameters?.resourceArn);
    if (!arn) throw new MalformedEventError('detail.requestParameters.resourceArn: expected the cluster ARN');
    ({ account, region, name } = clusterFromArn(arn, detail.eventName));
  } else {
    name = clusterName(detail);
  }
  if (!/^\d{12}$/.test(account)) throw new MalformedEventError('account: expected a 12-digit AWS account id');
  if (!region) throw new MalformedEventError('region: expected an AWS region');

  return {
    id: detail.eventID ?? event.id,
    source: 'aws',
    type: TYPES[detail.eventName],
    providerType: detail.eventName,
    cluster: { cloud: 'aws', scope: account, region, name },
    occurredAt: detail.eventTime ?? event.time,
    detail: detailOf(detail.eventName, detail),
  };
}
