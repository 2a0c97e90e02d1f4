/**
 * AKS events delivered by Event Grid to a webhook, in the Event Grid schema (JSON array) or
 * CloudEvents 1.0 (structured, single or batch): authentication (shared secret or Entra ID
 * bearer token), the two subscription validation handshakes, and normalisation of ARM
 * resource events and `Microsoft.ContainerService.*` events.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
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

/** How an Event Grid delivery proves it is ours; `secret` is the resolved value, never logged. */
export type AzureEventAuth =
  | { type: 'secret'; secret: string }
  | {
      type: 'entra';
      tenantId: string;
      /** The application ID URI or client id the Event Grid subscription requests tokens for. */
      audience: string;
      /** The client the token must be issued to (`azp`/`appid`); default {@link EVENT_GRID_APP_ID}. */
      clientAppId?: string | undefined;
      /** Default: the tenant's v2.0 signing keys. */
      jwksUrl?: string | undefined;
      clockToleranceSec?: number | undefined;
      now?: Date | undefined;
    };

/** The parts of a request authentication looks at (header names lower-case). */
export interface AzureAuthRequest {
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
}

/**
 * The application id of Azure Event Grid's own Entra ID application, which Microsoft documents
 * for Entra-protected webhook delivery ("Deliver events to Microsoft Entra protected
 * endpoints"): Event Grid's delivery tokens name it as their client, `azp` (v2.0) or `appid` (v1.0).
 */
export const EVENT_GRID_APP_ID = '4962773b-9cdb-44cf-a8bf-237846a00ab7';

/** The header carrying the shared secret when it is not in the `code` query parameter. */
export const SECRET_HEADER = 'x-fleetward-secret';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Checks that a delivery comes from our Event Grid subscription: the shared secret from the
 * `code` query parameter or the `x-fleetward-secret` header, compared in constant time; or
 * an Entra ID bearer token for `audience` issued by the tenant (v1 or v2 issuer) to Event
 * Grid's application (`azp`/`appid`, see {@link EVENT_GRID_APP_ID}). Throws
 * `EventAuthError`.
 */
export async function verifyEventGridRequest(request: AzureAuthRequest, auth: AzureEventAuth): Promise<void> {
  if (auth.type === 'secret') {
    if (!auth.secret) throw new EventAuthError('no secret configured');
    const presented = request.query.code ?? request.headers[SECRET_HEADER];
    if (!presented) throw new EventAuthError('no secret presented');
    // Hashing first gives equal lengths, so timingSafeEqual never leaks the secret's length.
    if (!timingSafeEqual(digest(presented), digest(auth.secret))) throw new EventAuthError('secret mismatch');
    return;
  }
  const claims = await verifyBearer(request.headers.authorization, {
    jwksUrl: auth.jwksUrl ?? `https://login.microsoftonline.com/${auth.tenantId}/discovery/v2.0/keys`,
    audience: auth.audience,
    issuers: [
      `https://login.microsoftonline.com/${auth.tenantId}/v2.0`,
      `https://sts.windows.net/${auth.tenantId}/`,
    ],
    clockToleranceSec: auth.clockToleranceSec,
    now: auth.now,
  });
  if (claims.tid !== undefined && claims.tid !== auth.tenantId)
    throw new EventAuthError('token of another tenant');
  // Any application of the tenant can get a token for the audience; only Event Grid's may deliver.
  const client = claims.azp ?? claims.appid;
  if (client !== (auth.clientAppId ?? EVENT_GRID_APP_ID))
    throw new EventAuthError('token not issued to event grid');
}

/** The Event Grid schema: one element of the delivered array. */
export const EventGridEventSchema = z.looseObject({
  id: z.string().min(1),
  topic: z.string().optional(),
  subject: z.string(),
  eventType: z.string().min(1),
  eventTime: z.string().regex(/^\d{4}-\d{2}-\d{2}T/, { error: 'expected an RFC 3339 time' }),
  data: z.unknown(),
  dataVersion: z.string().optional(),
  metadataVersion: z.string().optional(),
});

/** CloudEvents 1.0, structured mode. */
export const CloudEventSchema = z.looseObject({
  specversion: z.literal('1.0'),
  id: z.string().min(1),
  source: z.string().min(1),
  type: z.string().min(1),
  subject: z.string().optional(),
  time: z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}T/, { error: 'expected an RFC 3339 time' })
    .optional(),
  data: z.unknown().optional(),
});

/** One delivered event, whichever schema it came in. */
interface Delivered {
  id: string;
  type: string;
  /** Event Grid `topic` / CloudEvents `source`: the ARM id of the publishing resource or scope. */
  source: string;
  subject: string;
  time: string | undefined;
  data: unknown;
}

/** Result of reading one Event Grid request body. */
export interface EventGridBody {
  /** Set when the body is an Event Grid subscription validation: answer with exactly this. */
  validationResponse?: { validationResponse: string };
  events: ClusterEvent[];
  /** Well-formed events Fleetward does not act on. */
  ignored: number;
  /** Why each ignored event was ignored (for logs). */
  ignoredReasons: { id: string; providerType: string; reason: string }[];
}

export const VALIDATION_EVENT = 'Microsoft.EventGrid.SubscriptionValidationEvent';

function readItem(item: unknown, index: number, batch: boolean): Delivered {
  const prefix = batch ? String(index) : '';
  if (isRecord(item) && 'specversion' in item) {
    const e = parseOrMalformed(CloudEventSchema, item, prefix);
    return { id: e.id, type: e.type, source: e.source, subject: e.subject ?? '', time: e.time, data: e.data };
  }
  const e = parseOrMalformed(EventGridEventSchema, item, prefix);
  return {
    id: e.id,
    type: e.eventType,
    source: e.topic ?? '',
    subject: e.subject,
    time: e.eventTime,
    data: e.data,
  };
}

const MANAGED_CLUSTER =
  /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/Microsoft\.ContainerService\/managedClusters\/([^/]+)$/i;

function clusterFromId(id: string) {
  const m = MANAGED_CLUSTER.exec(id.trim());
  return m ? { scope: m[1]!, resourceGroup: m[2]!, name: m[3]! } : undefined;
}

const AKS_TYPES: Record<string, ClusterEventType> = {
  'Microsoft.ContainerService.NewKubernetesVersionAvailable': 'version-available',
  'Microsoft.ContainerService.ClusterSupportEnding': 'support-ending',
  'Microsoft.ContainerService.ClusterSupportEnded': 'support-ended',
};

const RESOURCE_TYPES: Record<string, ClusterEventType> = {
  // ARM does not say whether a write created the resource; a rediscovery tells.
  'Microsoft.Resources.ResourceWriteSuccess': 'updated',
  'Microsoft.Resources.ResourceDeleteSuccess': 'deleted',
};

function normalise(e: Delivered): ClusterEvent {
  const data = isRecord(e.data) ? e.data : {};
  const base = { id: e.id, source: 'azure' as const, providerType: e.type, occurredAt: e.time ?? '' };

  const resourceType = RESOURCE_TYPES[e.type];
  if (resourceType) {
    const uri = str(data.resourceUri) ?? e.subject;
    const ref = clusterFromId(uri);
    if (!ref)
      throw new UnsupportedEventError('resource event for something other than an aks cluster', e.type);
    return {
      ...base,
      type: resourceType,
      cluster: {
        cloud: 'azure',
        scope: ref.scope,
        region: '',
        name: ref.name,
        resourceGroup: ref.resourceGroup,
      },
      detail: compact({ operationName: str(data.operationName), status: str(data.status) }),
    };
  }

  const aksType = AKS_TYPES[e.type];
  if (aksType) {
    // The topic/source is the managed cluster's ARM id; the subject is its name (or its id).
    const ref = clusterFromId(e.source) ?? clusterFromId(e.subject);
    if (!ref) throw new MalformedEventError('topic: expected the resource id of an aks managed cluster');
    return {
      ...base,
      type: aksType,
      cluster: {
        cloud: 'azure',
        scope: ref.scope,
        region: '',
        name: ref.name,
        resourceGroup: ref.resourceGroup,
      },
      detail:
        aksType === 'version-available'
          ? compact({
              latestSupportedKubernetesVersion: str(data.latestSupportedKubernetesVersion),
              latestStableKubernetesVersion: str(data.latestStableKubernetesVersion),
              lowestMinorKubernetesVersion: str(data.lowestMinorKubernetesVersion),
              latestPreviewKubernetesVersion: str(data.latestPreviewKubernetesVersion),
            })
          : compact({ kubernetesVersion: str(data.kubernetesVersion) }),
    };
  }
  throw new UnsupportedEventError('event type fleetward does not act on', e.type);
}

/**
 * Reads an Event Grid request body (already JSON-parsed): an Event Grid schema array (or a
 * single event), a CloudEvents batch array, or a single CloudEvent. A subscription validation
 * event sets `validationResponse`; the other events of its batch are read as usual. Any malformed element fails the whole body
 * with `MalformedEventError` (Event Grid then dead-letters it instead of retrying); unsupported
 * elements are counted in `ignored`.
 */
export function parseEventGridBody(body: unknown): EventGridBody {
  const batch = Array.isArray(body);
  const items: unknown[] = batch ? body : [body];
  if (items.length === 0) throw new MalformedEventError('body: expected at least one event');
  const delivered = items.map((item, i) => readItem(item, i, batch));

  const result: EventGridBody = { events: [], ignored: 0, ignoredReasons: [] };
  for (const e of delivered) {
    if (e.type === VALIDATION_EVENT) {
      // The handshake is answered, and the other events of the same batch are still acted on.
      const code = isRecord(e.data) ? str(e.data.validationCode) : undefined;
      if (!code) throw new MalformedEventError('data.validationCode: expected the validation code');
      result.validationResponse = { validationResponse: code };
      continue;
    }
    try {
      result.events.push(normalise(e));
    } catch (error) {
      if (!(error instanceof UnsupportedEventError)) throw error;
      result.ignored += 1;
      result.ignoredReasons.push({ id: e.id, providerType: error.providerType, reason: error.message });
    }
  }
  return result;
}

/**
 * The CloudEvents 1.0 webhook validation (HTTP OPTIONS with `WebHook-Request-Origin`): the
 * headers granting that origin delivery, or undefined when the request is not a handshake.
 */
export function webhookValidationHeaders(
  method: string,
  headers: Record<string, string | undefined>,
): Record<string, string> | undefined {
  const origin = headers['webhook-request-origin'];
  if (method.toUpperCase() !== 'OPTIONS' || !origin) return undefined;
  return { 'WebHook-Allowed-Origin': origin, 'WebHook-Allowed-Rate': '*', Allow: 'POST, OPTIONS' };
}
