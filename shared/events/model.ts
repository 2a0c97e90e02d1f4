/**
 * The one normalised cloud event Fleetward reacts to, whichever cloud sent it, and the three
 * ways an incoming event can be refused. Parsers in `aws.ts`, `gcp.ts` and `azure.ts` turn the
 * clouds' own payloads into `ClusterEvent`s; `http.ts` maps the errors to HTTP status codes.
 */
import type { z } from 'zod';
import { FleetwardError } from '../runtime/errors.ts';

/** What happened to the cluster, in Fleetward's words. */
export const CLUSTER_EVENT_TYPES = [
  'created',
  'deleted',
  'updated',
  'version-available',
  'support-ending',
  'support-ended',
  /** A provider security bulletin about versions (GKE `SecurityBulletinEvent`): a finding, no cluster change. */
  'security-bulletin',
] as const;
export type ClusterEventType = (typeof CLUSTER_EVENT_TYPES)[number];

/** The cloud an event came from (and the cloud of the cluster it names). */
export type EventCloud = 'aws' | 'gcp' | 'azure';

/** The cluster an event is about: enough to rediscover that one cluster. */
export interface EventClusterRef {
  cloud: EventCloud;
  /** AWS account id, GCP project (id or number, as the event gives it) or Azure subscription id. */
  scope: string;
  /** AWS region, GKE location (region or zone); Azure: `''` when the event does not say. */
  region: string;
  name: string;
  /** Azure only: the resource group of the managed cluster. */
  resourceGroup?: string;
}

/** One cloud event about one cluster, normalised. */
export interface ClusterEvent {
  /**
   * The source's own event id, used for idempotency: CloudTrail `eventID` (EventBridge `id`
   * when missing), Pub/Sub `messageId`, Event Grid `id` / CloudEvents `id`.
   */
  id: string;
  source: EventCloud;
  type: ClusterEventType;
  /** The provider's own name for the event, e.g. `CreateCluster`, `Microsoft.Resources.ResourceWriteSuccess`. */
  providerType: string;
  cluster: EventClusterRef;
  /** ISO 8601 time the change happened (or the notification was published). */
  occurredAt: string;
  /** A few small facts (e.g. the new version); never request bodies, tokens or secrets. */
  detail: Record<string, unknown>;
}

/** The request did not prove who sent it (-> 401). The message stays generic; `reason` is for logs. */
export class EventAuthError extends FleetwardError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super('event sender not authenticated', options);
    this.name = 'EventAuthError';
    this.reason = reason;
  }
}

/** The body is not a well-formed event (-> 400); the message names the bad field. */
export class MalformedEventError extends FleetwardError {
  readonly reason: string;
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'MalformedEventError';
    this.reason = reason;
  }
}

/** A well-formed event Fleetward does not act on (-> 202, counted as ignored). */
export class UnsupportedEventError extends FleetwardError {
  readonly providerType: string;
  constructor(message: string, providerType: string) {
    super(message);
    this.name = 'UnsupportedEventError';
    this.providerType = providerType;
  }
}

/** The first zod issue as `path: message`, prefixed with where the parsed value sits. */
export function zodReason(error: z.ZodError, prefix = ''): string {
  const issue = error.issues[0];
  if (!issue) return `${prefix || 'body'}: invalid`;
  const path = [prefix, ...issue.path.map(String)].filter((p) => p !== '').join('.');
  return `${path || 'body'}: ${issue.message}`;
}

/** Parses `value` with `schema`, turning a failure into a `MalformedEventError` naming the field. */
export function parseOrMalformed<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new MalformedEventError(zodReason(result.error, prefix), { cause: result.error });
  return result.data;
}

/** A plain object (not an array, not null). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value` if it is a non-empty string, otherwise undefined. */
export function str(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** Drops undefined values so `detail` stays small and JSON-clean. */
export function compact(values: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
}
