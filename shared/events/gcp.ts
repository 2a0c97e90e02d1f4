/**
 * GKE events delivered by a Pub/Sub push subscription: the push request's OIDC token, the
 * push envelope, and the two kinds of message Fleetward acts on — GKE cluster notifications
 * and Cloud Audit Log entries routed by a log sink.
 */
import { z } from 'zod';
import { verifyBearer } from './jwt.ts';
import {
  type ClusterEvent,
  type ClusterEventType,
  compact,
  EventAuthError,
  isRecord,
  MalformedEventError,
  parseOrMalformed,
  str,
  UnsupportedEventError,
} from './model.ts';

/** Google's OAuth2 signing keys. */
export const GOOGLE_JWKS_URL = 'https://www.googleapis.com/oauth2/v3/certs';
/** Issuers of Google-signed OIDC tokens. */
export const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];

/** What a push request's token must prove. */
export interface PushAuthOptions {
  /** The audience configured on the push subscription (usually the endpoint URL). */
  audience: string;
  /** The service account the push subscription signs tokens as. */
  serviceAccountEmail: string;
  jwksUrl?: string | undefined;
  issuers?: string[] | undefined;
  clockToleranceSec?: number | undefined;
  /** Oldest token accepted, by its `iat`, in seconds (default {@link PUSH_TOKEN_MAX_AGE_SEC}). */
  maxTokenAgeSec?: number | undefined;
  now?: Date | undefined;
}

/**
 * Push tokens live one hour (Google signs them with `exp = iat + 3600`), so one issued earlier
 * than that is refused whatever its `exp` says.
 */
export const PUSH_TOKEN_MAX_AGE_SEC = 3600;

/** The claims of a verified push token that Fleetward reads. */
export interface PushTokenClaims {
  email: string;
  sub: string | undefined;
  aud: string | string[] | undefined;
}

/**
 * Verifies the `Authorization: Bearer` OIDC token Pub/Sub attaches to push requests: RS256
 * signature against Google's keys (JWKS cached per URL), `aud`, `iss`, `exp`, `iat` no older than
 * `maxTokenAgeSec`, and that
 * `email` is the configured service account with `email_verified: true`.
 * Any failure is an `EventAuthError` (generic message, `reason` for logs).
 */
export async function verifyPushToken(
  authorizationHeader: string | undefined,
  options: PushAuthOptions,
): Promise<PushTokenClaims> {
  const claims = await verifyBearer(authorizationHeader, {
    jwksUrl: options.jwksUrl ?? GOOGLE_JWKS_URL,
    audience: options.audience,
    issuers: options.issuers ?? GOOGLE_ISSUERS,
    clockToleranceSec: options.clockToleranceSec,
    maxTokenAgeSec: options.maxTokenAgeSec ?? PUSH_TOKEN_MAX_AGE_SEC,
    now: options.now,
  });
  if (
    typeof claims.email !== 'string' ||
    claims.email.toLowerCase() !== options.serviceAccountEmail.toLowerCase()
  ) {
    throw new EventAuthError('token email is not the push service account');
  }
  if (claims.email_verified !== true) throw new EventAuthError('token email is not verified');
  return { email: claims.email, sub: claims.sub, aud: claims.aud };
}

const PushMessage = z.object({
  /** Absent when the publisher sent attributes only. */
  data: z.base64({ error: 'expected base64' }).optional(),
  attributes: z.record(z.string(), z.string()).default({}),
  messageId: z.string({ error: 'expected a message id' }).min(1, { error: 'expected a message id' }),
  publishTime: z.iso.datetime({ offset: true, error: 'expected an RFC 3339 time' }),
});

/** The JSON body of a Pub/Sub push request (wrapped delivery). */
export const PushEnvelopeSchema = z.object({
  message: PushMessage,
  subscription: z.string({ error: 'expected a subscription name' }).min(1),
});
export type PushEnvelope = z.infer<typeof PushEnvelopeSchema>;

/** The CloudEvents type of a Pub/Sub message (Eventarc, Pub/Sub push in CloudEvents format). */
export const PUBSUB_CLOUDEVENT_TYPE = 'google.cloud.pubsub.topic.v1.messagePublished';

/** A push in CloudEvents 1.0 structured mode: the push envelope is the event's `data`. */
const PushCloudEventSchema = z.looseObject({
  specversion: z.literal('1.0'),
  type: z.literal(PUBSUB_CLOUDEVENT_TYPE, { error: `expected ${PUBSUB_CLOUDEVENT_TYPE}` }),
  id: z.string().min(1),
  time: z.string().optional(),
  data: z.looseObject({ message: z.looseObject({}) }, { error: 'expected the push envelope' }),
});

/**
 * Validates a push request body (parsed JSON or the raw text): the wrapped push envelope
 * `{message, subscription}` (also what binary-mode CloudEvents carry as their body), or a
 * CloudEvents structured-mode event whose `data` is that envelope; a message without its own
 * id or time then takes the event's `id` and `time`. Pub/Sub sends both
 * `messageId`/`publishTime` and their snake_case twins; either spelling is accepted.
 * Throws `MalformedEventError` naming the bad field.
 */
export function parsePushBody(body: unknown): PushEnvelope {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch (error) {
      throw new MalformedEventError('body: expected JSON', { cause: error });
    }
  }
  let fallback: { id?: string; time?: string | undefined } = {};
  if (isRecord(value) && 'specversion' in value) {
    const event = parseOrMalformed(PushCloudEventSchema, value);
    fallback = { id: event.id, time: event.time };
    value = event.data;
  }
  if (isRecord(value) && isRecord(value.message)) {
    const m = value.message;
    value = {
      ...value,
      message: {
        ...m,
        messageId: m.messageId ?? m.message_id ?? fallback.id,
        publishTime: m.publishTime ?? m.publish_time ?? fallback.time,
      },
    };
  }
  return parseOrMalformed(PushEnvelopeSchema, value);
}

/** The decoded `data` of a push message as text ('' when absent). */
function dataText(envelope: PushEnvelope): string {
  return envelope.message.data ? Buffer.from(envelope.message.data, 'base64').toString('utf8') : '';
}

function jsonOrUndefined(text: string | undefined): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const NOTIFICATION_TYPE = /^type\.googleapis\.com\/(google\.container\.v1(?:beta1)?\.([A-Za-z]+))$/;

/**
 * A GKE cluster notification: cluster in the `project_id`, `cluster_location`, `cluster_name`
 * attributes, the event as JSON in the `payload` attribute (the message `data` is a
 * human-readable sentence; a JSON `data` is accepted as the payload when `payload` is absent).
 */
function fromNotification(envelope: PushEnvelope): ClusterEvent {
  const attributes = envelope.message.attributes;
  const typeUrl = attributes.type_url ?? '';
  const match = NOTIFICATION_TYPE.exec(typeUrl);
  if (!match) throw new UnsupportedEventError('not a gke cluster notification', typeUrl);
  const providerType = match[1]!;
  const kind = match[2]!;
  for (const key of ['project_id', 'cluster_location', 'cluster_name'] as const) {
    if (!attributes[key]) throw new MalformedEventError(`message.attributes.${key}: expected a value`);
  }
  const rawPayload = attributes.payload;
  const payload =
    rawPayload !== undefined ? jsonOrUndefined(rawPayload) : jsonOrUndefined(dataText(envelope));
  if (rawPayload !== undefined && !isRecord(payload)) {
    throw new MalformedEventError('message.attributes.payload: expected a JSON object');
  }
  const p = isRecord(payload) ? payload : {};
  const publishTime = envelope.message.publishTime;

  let type: ClusterEventType;
  let detail: Record<string, unknown>;
  switch (kind) {
    case 'UpgradeAvailableEvent':
      type = 'version-available';
      detail = compact({
        version: str(p.version),
        resourceType: str(p.resourceType),
        releaseChannel: isRecord(p.releaseChannel) ? str(p.releaseChannel.channel) : undefined,
      });
      break;
    case 'UpgradeEvent':
      type = 'updated';
      detail = compact({
        currentVersion: str(p.currentVersion),
        targetVersion: str(p.targetVersion),
        resourceType: str(p.resourceType),
      });
      break;
    case 'UpgradeInfoEvent': {
      const eventType = str(p.eventType);
      if (eventType === 'END_OF_SUPPORT') {
        // Past the last support date (extended, else standard) when the notice was published: ended.
        const end = str(p.extendedSupportEndTime) ?? str(p.standardSupportEndTime);
        type =
          end !== undefined && Date.parse(end) <= Date.parse(publishTime)
            ? 'support-ended'
            : 'support-ending';
      } else if (eventType === 'UPGRADE_LIFECYCLE' && str(p.state) === 'SUCCEEDED') {
        type = 'updated';
      } else {
        throw new UnsupportedEventError(`upgrade info event ${eventType ?? 'without a type'}`, providerType);
      }
      detail = compact({
        eventType,
        currentVersion: str(p.currentVersion),
        targetVersion: str(p.targetVersion),
        resourceType: str(p.resourceType),
        standardSupportEndTime: str(p.standardSupportEndTime),
        extendedSupportEndTime: str(p.extendedSupportEndTime),
      });
      break;
    }
    case 'SecurityBulletinEvent': {
      const strings = (value: unknown) =>
        Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
      const bulletinId = str(p.bulletinId);
      const affectedSupportedMinors = strings(p.affectedSupportedMinors);
      if (!bulletinId)
        throw new MalformedEventError('message.attributes.payload.bulletinId: expected a value');
      if (!affectedSupportedMinors)
        throw new MalformedEventError('message.attributes.payload.affectedSupportedMinors: expected a list');
      type = 'security-bulletin';
      detail = compact({
        bulletinId,
        severity: str(p.severity),
        briefDescription: str(p.briefDescription),
        bulletinUri: str(p.bulletinUri),
        cveIds: strings(p.cveIds),
        affectedSupportedMinors,
        patchedVersions: strings(p.patchedVersions) ?? [],
        suggestedUpgradeTarget: str(p.suggestedUpgradeTarget),
        manualStepsRequired: typeof p.manualStepsRequired === 'boolean' ? p.manualStepsRequired : undefined,
        resourceTypeAffected: str(p.resourceTypeAffected),
      });
      break;
    }
    default:
      // Anything newer: no cluster state change to act on.
      throw new UnsupportedEventError('gke notification without a cluster change', providerType);
  }
  return {
    id: envelope.message.messageId,
    source: 'gcp',
    type,
    providerType,
    cluster: {
      cloud: 'gcp',
      scope: attributes.project_id!,
      region: attributes.cluster_location!,
      name: attributes.cluster_name!,
    },
    occurredAt: publishTime,
    detail,
  };
}

/** Audit-logged GKE methods (v1 or v1beta1 `ClusterManager`) that change a cluster. */
export const GKE_AUDIT_METHODS: Record<string, ClusterEventType> = {
  CreateCluster: 'created',
  DeleteCluster: 'deleted',
  UpdateCluster: 'updated',
  UpdateMaster: 'updated',
  SetLabels: 'updated',
  SetLocations: 'updated',
  SetLoggingService: 'updated',
  SetMonitoringService: 'updated',
  SetAddonsConfig: 'updated',
  SetMaintenancePolicy: 'updated',
  SetNetworkPolicy: 'updated',
  SetLegacyAbac: 'updated',
  SetMasterAuth: 'updated',
  StartIPRotation: 'updated',
  CompleteIPRotation: 'updated',
};

const AUDIT_METHOD = /^google\.container\.v1(?:beta1)?\.ClusterManager\.([A-Za-z]+)$/;
const CLUSTER_RESOURCE = /^projects\/([^/]+)\/(?:locations|zones)\/([^/]+)\/clusters\/([^/]+)$/;

/** The LogEntry fields Fleetward reads from an audit log sink message. */
const AuditLogEntrySchema = z.looseObject({
  insertId: z.string().optional(),
  timestamp: z.iso.datetime({ offset: true }).optional(),
  protoPayload: z.looseObject({
    serviceName: z.string(),
    methodName: z.string(),
    resourceName: z.string().optional(),
    status: z.looseObject({ code: z.number().optional() }).optional(),
    request: z.unknown().optional(),
  }),
  resource: z
    .looseObject({ type: z.string().optional(), labels: z.record(z.string(), z.string()).optional() })
    .optional(),
  operation: z.looseObject({ id: z.string().optional(), last: z.boolean().optional() }).optional(),
});

function fromAuditLog(envelope: PushEnvelope, entry: Record<string, unknown>): ClusterEvent {
  const log = parseOrMalformed(AuditLogEntrySchema, entry, 'message.data');
  const { protoPayload } = log;
  if (protoPayload.serviceName !== 'container.googleapis.com') {
    throw new UnsupportedEventError('audit log entry of another service', protoPayload.methodName);
  }
  const method = AUDIT_METHOD.exec(protoPayload.methodName)?.[1];
  const type = method ? GKE_AUDIT_METHODS[method] : undefined;
  if (!type)
    throw new UnsupportedEventError('gke method that does not change a cluster', protoPayload.methodName);
  if (protoPayload.status?.code) {
    throw new UnsupportedEventError('failed gke call: nothing changed', protoPayload.methodName);
  }
  // Long-running operations log a first and a last entry; act once, when the operation is done.
  if (log.operation && log.operation.last !== true) {
    throw new UnsupportedEventError('gke operation not finished yet', protoPayload.methodName);
  }
  const labels = log.resource?.labels ?? {};
  const fromName = CLUSTER_RESOURCE.exec(protoPayload.resourceName ?? '');
  const scope = labels.project_id ?? fromName?.[1];
  const region = labels.location ?? fromName?.[2];
  const name = labels.cluster_name ?? fromName?.[3];
  if (!scope || !region || !name) {
    throw new MalformedEventError('message.data.resource.labels.cluster_name: expected the cluster name');
  }
  const request = isRecord(protoPayload.request) ? protoPayload.request : {};
  const update = isRecord(request.update) ? request.update : {};
  return {
    id: envelope.message.messageId,
    source: 'gcp',
    type,
    providerType: protoPayload.methodName,
    cluster: { cloud: 'gcp', scope, region, name },
    occurredAt: log.timestamp ?? envelope.message.publishTime,
    detail: compact({
      operation: log.operation?.id,
      version: str(update.desiredMasterVersion) ?? str(request.masterVersion),
    }),
  };
}

/**
 * Normalises one push message: a GKE cluster notification (has a `type_url` attribute) or a
 * Cloud Audit Log entry (JSON LogEntry in `data`) of `container.googleapis.com`.
 * Throws `MalformedEventError` naming the bad field, `UnsupportedEventError` for other
 * messages, notifications without a cluster change, other methods, failed or unfinished calls.
 */
export function normalisePushMessage(envelope: PushEnvelope): ClusterEvent {
  if (envelope.message.attributes.type_url !== undefined) return fromNotification(envelope);
  const text = dataText(envelope);
  const entry = jsonOrUndefined(text);
  if (isRecord(entry) && isRecord(entry.protoPayload)) return fromAuditLog(envelope, entry);
  if (text === '')
    throw new MalformedEventError('message.data: expected a GKE notification or an audit log entry');
  throw new UnsupportedEventError('neither a gke notification nor an audit log entry', 'pubsub-message');
}
