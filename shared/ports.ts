/**
 * The interfaces jobs depend on. Jobs never import a cloud SDK: they see these
 * ports, and `shared/clouds/<cloud>/` (plus the storage adapters) implement them.
 * Keep each port small and every method documented (Velero's ObjectStore is the model).
 */
import type { CloudId, Cluster, DiscoveredCluster, DiscoveryOutcome, RegionCloud } from './model.ts';
import type { WorkItem, WorkJob } from './runtime/dispatch.ts';

/** Finds clusters in one cloud, across every scope (account+region, project, subscription, context) it was configured with. */
export interface ClusterDiscovery {
  /** The cloud this adapter covers. */
  readonly cloud: CloudId;
  /**
   * Lists every cluster in every configured scope. A failing scope (or a cluster
   * payload that cannot be parsed) is reported in `failures` and never stops the
   * other scopes; only an aborted `signal` rejects.
   */
  discover(options?: { signal?: AbortSignal }): Promise<DiscoveryOutcome>;
  /**
   * Reads one cluster by its coordinates (an event said it changed), mapped exactly as
   * `discover` maps it: `scope` is the account / project / subscription, `region` the AWS
   * region or GKE location (ignored by Azure, whose events do not carry it), `resourceGroup`
   * the Azure resource group (required there). Resolves `null` when the cloud says the
   * cluster does not exist (404, `ResourceNotFoundException`, `NOT_FOUND`). Rejects with a
   * `ConfigError`, before any cloud call, when the scope (or AWS region) is not configured;
   * with an `UnparseableClusterError` when the answer cannot be read; with a `CloudApiError`
   * on any other failure. Absent on adapters without cloud events (kubeconfig).
   */
  describe?(
    ref: { scope: string; region: string; name: string; resourceGroup?: string },
    options?: { signal?: AbortSignal },
  ): Promise<DiscoveredCluster | null>;
}

/**
 * The configured GCP projects by number. GKE cluster notifications name a project by its
 * number; the config and the inventory by its id.
 */
export interface ProjectDirectory {
  /**
   * The id of the configured project whose number is `number`, or `undefined` when no
   * configured project has that number. Rejects with a `CloudApiError` when a number had to be
   * looked up and the lookup failed (nothing is cached then, so the next call asks again).
   */
  projectIdOf(number: string, options?: { signal?: AbortSignal }): Promise<string | undefined>;
}

/** A Kubernetes object as the API serves it (only the fields every kind has are typed). */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name?: string;
    generateName?: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    creationTimestamp?: string;
    resourceVersion?: string;
    /** Which manager last wrote which fields, and when (`subresource: status` for status writes). */
    managedFields?: { manager?: string; operation?: string; subresource?: string; time?: string }[];
  };
  spec?: unknown;
  status?: unknown;
}

/** Names one object: its type and name (and namespace for namespaced kinds). */
export interface KubeRef {
  apiVersion: string;
  kind: string;
  name: string;
  namespace?: string;
}

/**
 * One cluster's Kubernetes API. Calls are retried on 429, 5xx and timeouts; an expired
 * token is refreshed once. Errors other than the documented outcomes reject with a
 * `CloudApiError` (cloud `kube`).
 */
export interface KubeApi {
  /** Reads one object, or `undefined` when it (or its type) does not exist. */
  read<T extends KubeObject>(ref: KubeRef): Promise<T | undefined>;
  /** Lists objects of a type, optionally in one namespace and matching an equality label selector (`a=b,c!=d`). */
  list<T extends KubeObject>(
    apiVersion: string,
    kind: string,
    options?: { namespace?: string; labelSelector?: string },
  ): Promise<T[]>;
  /**
   * Creates an object. An object of that name that already exists is not an error: the
   * existing one is returned with `created: false` (so a retried invocation finds its own
   * resource). `dryRun` asks the server to validate without storing.
   */
  create<T extends KubeObject>(
    object: T,
    options?: { dryRun?: boolean },
  ): Promise<{ object: T; created: boolean }>;
  /** Deletes an object; `false` when it was already gone. */
  delete(ref: KubeRef): Promise<boolean>;
}

/** Opens Kubernetes API connections to discovered clusters, minting the cloud's token for each. */
export interface KubeAccess {
  /**
   * Connects to a cluster's API (its endpoint, or the configured override). Tokens are
   * minted here, kept only in memory, refreshed on expiry, and never logged or returned.
   */
  connect(cluster: Cluster, options?: { signal?: AbortSignal }): Promise<KubeApi>;
}

/** A Velero BackupStorageLocation's object storage, as its spec names it. */
export interface BucketRef {
  /** Velero provider: `aws` (or `velero.io/aws`), `gcp`, `azure`. */
  provider: string;
  bucket: string;
  /** The BSL's `spec.config` (`region`, `storageAccount`, `resourceGroup`, `subscriptionId`, ...). */
  config: Record<string, string>;
}

/** Finds where a bucket physically lives, through the cloud that hosts it. */
export interface BucketLocator {
  /**
   * The cloud and region of a bucket: S3 GetBucketLocation, the GCS bucket's location, the
   * Azure storage account's location. `cluster` tells whose credentials to use. Rejects
   * when the bucket cannot be found or read.
   */
  locate(
    bucket: BucketRef,
    cluster: Cluster,
    options?: { signal?: AbortSignal },
  ): Promise<{ cloud: RegionCloud; region: string }>;
}

/** One stored item: a key inside a namespace and its JSON-serialisable value. */
export interface StoredItem<T = unknown> {
  key: string;
  value: T;
  /**
   * Epoch milliseconds after which the item no longer holds its key for
   * {@link StateStore.putIfAbsent} (a lease, an idempotency record). `get` and `list` still
   * return it and nothing deletes it; absent: the item never expires.
   */
  expiresAt?: number | undefined;
}

/**
 * Durable key/value state (inventory, checkpoints, run ledger, drill history).
 * Values are JSON-serialisable; keys are unique within a namespace.
 */
export interface StateStore {
  /** Reads one item, or `undefined` when absent. */
  get<T>(namespace: string, key: string): Promise<T | undefined>;
  /** Lists every item of a namespace whose key starts with `prefix` (all when omitted), in key order. */
  list<T>(namespace: string, options?: { prefix?: string }): Promise<StoredItem<T>[]>;
  /** Creates or replaces items; all or nothing is not promised across batches, each item is atomic. */
  putMany(namespace: string, items: StoredItem[]): Promise<void>;
  /**
   * Creates `item` only if its key is free: no item has it, or the item holding it has an
   * `expiresAt` at or before the store's clock. Returns whether it wrote. Atomic against
   * concurrent callers (one of two racing creates wins), so it can guard work that must run
   * once per key, such as a redelivered event.
   */
  putIfAbsent(namespace: string, item: StoredItem): Promise<boolean>;
  /** Deletes items by key; absent keys are ignored. */
  deleteMany(namespace: string, keys: string[]): Promise<void>;
  /** Releases connections or file handles. */
  close(): Promise<void>;
}

/** Structured logger (Powertools Logger satisfies it). Messages are constant; data goes in fields. */
export interface Log {
  debug(message: string, ...extra: Record<string, unknown>[]): void;
  info(message: string, ...extra: Record<string, unknown>[]): void;
  warn(message: string, ...extra: Record<string, unknown>[]): void;
  error(message: string, ...extra: Record<string, unknown>[]): void;
}

/** The time source, injected so tests and re-entrant jobs agree on "now". */
export interface Clock {
  /** The current instant. */
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** One control-plane audit event as the log service returned it. */
export interface AuditEvent {
  /** `auditID` of the audit.k8s.io/v1 Event; `null` when the line could not be parsed. */
  auditID: string | null;
  /**
   * `stage` of the Event (`RequestReceived`, `ResponseStarted`, `ResponseComplete`, `Panic`):
   * Kubernetes writes one event per stage under the same `auditID`. `null`/absent when unknown.
   */
  stage?: string | null | undefined;
  /**
   * The log service's own identity of the record, stable across re-reads: CloudWatch Logs
   * `eventId`; Cloud Logging `[logName, timestamp, insertId]` (`cloudLoggingRecordId` in shared/audit/chunks.ts);
   * Log Analytics `_ItemId`. `null`/absent when the service gave none.
   */
  recordId?: string | null | undefined;
  /** The log service's timestamp of the event, the one time windows filter on (ISO 8601); drives checkpoints and chunk dates. */
  timestamp: string;
  /** The event exactly as the log service returned it (kept verbatim, parseable or not). */
  raw: string;
}

/** Reads a cluster's control-plane audit log from its cloud's log service. */
export interface AuditLogSource {
  /** Whether the cluster sends audit logs where this source reads them (else a finding). */
  enabled(
    cluster: Cluster,
    options?: { signal?: AbortSignal },
  ): Promise<{ enabled: boolean; reason?: string }>;
  /**
   * Events received in `[since, until)`, page by page (each page at most a few thousand
   * events, so memory stays flat). Order within a page follows the service.
   */
  read(
    cluster: Cluster,
    window: { since: Date; until: Date },
    options?: { signal?: AbortSignal },
  ): AsyncIterable<AuditEvent[]>;
}

/** A stored object version. */
export interface ArchivedObject {
  key: string;
  /** The version the store assigned (S3 VersionId, GCS generation, Azure versionId; local: a digest). */
  version: string;
}

/**
 * Write-once evidence storage for one bucket or container (Velero's ObjectStore, narrowed
 * to what an immutable archive needs). Implementations never overwrite an object.
 */
export interface ArchiveStore {
  /** `aws:<bucket>`, `gcs:<bucket>`, `azure:<account>/<container>`, `local:<dir>`. */
  readonly id: string;
  /** Cloud and region of the bucket, for the residency guard; `null` for a local directory. */
  location(options?: { signal?: AbortSignal }): Promise<{ cloud: RegionCloud; region: string } | null>;
  /**
   * Fails (rejects with a `FleetwardError`) unless objects are write-once and kept at least
   * `retentionDays`: S3 Object Lock COMPLIANCE default retention, a locked GCS retention
   * policy, Azure version-level immutability.
   */
  assertImmutable(retentionDays: number, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Creates `key` from `body` only if no object has that key (conditional create), sending
   * the checksum the store verifies. Rejects with `ObjectExistsError` when the key exists.
   */
  create(
    key: string,
    body: Uint8Array,
    meta: { sha256: string; contentType: string },
    options?: { signal?: AbortSignal },
  ): Promise<ArchivedObject>;
  /** Reads the bytes of an object; the given version, else the latest; `undefined` when absent. */
  get(key: string, options?: { version?: string; signal?: AbortSignal }): Promise<Uint8Array | undefined>;
  /**
   * Every version of every object under `prefix`, in key order (versions newest first), with
   * the creation time of the latest version (ISO 8601) where the store reports one (the hourly
   * digests place an object in the hour it was created).
   */
  list(
    prefix: string,
    options?: { signal?: AbortSignal },
  ): Promise<{ key: string; versions: string[]; created?: string | undefined }[]>;
}

/**
 * A job's work queue (SQS in a deployment). Items carry ids only; the queue is at-least-once,
 * so every item's run is idempotent.
 */
export interface WorkQueue {
  /**
   * Enqueues `items` on `job`'s queue, in batches the service accepts; resolves once every
   * item is accepted, and rejects naming the items it could not enqueue.
   */
  send(job: WorkJob, items: readonly WorkItem[], options?: { signal?: AbortSignal }): Promise<void>;
}

/**
 * Signs the hourly audit digests of one jurisdiction with an asymmetric key that never leaves
 * its key service (AWS KMS `ECC_NIST_P256`, `ECDSA_SHA_256`, in the jurisdiction's region);
 * a local run signs with a key file and says it is not compliant. Digests hold hashes only.
 */
export interface DigestSigner {
  /** The key's identity as recorded in each digest: a KMS key ARN, or `local:<fingerprint>`. */
  readonly keyId: string;
  /** The signing algorithm recorded in each digest (`ECDSA_SHA_256`). */
  readonly algorithm: 'ECDSA_SHA_256';
  /** Cloud and region of the key, for the residency guard; `null` for a local key file. */
  location(options?: { signal?: AbortSignal }): Promise<{ cloud: RegionCloud; region: string } | null>;
  /** The DER-encoded signature of `message` (the service hashes it with SHA-256). */
  sign(message: Uint8Array, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  /** The public key as PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo). */
  publicKeyPem(options?: { signal?: AbortSignal }): Promise<string>;
}

/**
 * Where one cluster's audit log goes in export mode, as Fleetward wants it: one named export
 * resource (CloudWatch Logs subscription filter to a Firehose stream, a Log Router sink, a
 * diagnostic setting) and what it must say. Fields are plain strings so a plan can diff them.
 */
export interface ExportSpec {
  /** The export resource's name; Fleetward only ever touches resources of names it gives. */
  name: string;
  /** The destination as the cloud names it (a Firehose stream ARN, `storage.googleapis.com/<bucket>`, a storage account id). */
  destination: string;
  /** What is exported (a subscription filter pattern, a Logging filter, a diagnostic log category). */
  filter: string;
  /** Anything else the cloud resource must say, by field (delivery prefix, bucket, role). */
  settings: Record<string, string>;
}

/** An export resource as the cloud reports it. */
export interface ExportObserved {
  name: string;
  /** `false` when the resource exists but does not deliver (a disabled sink, a stream not ACTIVE). */
  enabled: boolean;
  destination: string;
  filter: string;
  settings: Record<string, string>;
  /** Delivery errors the cloud reports for it (Firehose delivery failures, sink writer errors), newest first. */
  deliveryErrors: string[];
}

/** The exported objects of one cluster: an evidence store and the prefix its objects live under. */
export interface ExportedObjects {
  store: ArchiveStore;
  prefix: string;
}

/**
 * A cloud's native audit-log export path, managed as desired state (`fleetward audit plan` /
 * `apply`). Fleetward code is never in the data path: the cloud delivers the log itself.
 */
export interface AuditExporter {
  /** The cloud this exporter covers. */
  readonly cloud: RegionCloud;
  /** What should exist for `cluster`, delivering into the jurisdiction's evidence store `store` (pure). */
  desired(cluster: Cluster, store: ArchiveStore): ExportSpec;
  /**
   * The destination's cloud and region (for the residency guard), after checking that it is
   * write-once for `retentionDays` the way the cloud's export writes it (S3 Object Lock, a
   * locked GCS retention policy, an Azure immutability policy that allows protected append
   * writes). Rejects with a `FleetwardError` naming what is missing.
   */
  checkDestination(
    cluster: Cluster,
    spec: ExportSpec,
    retentionDays: number,
    options?: { signal?: AbortSignal },
  ): Promise<{ cloud: RegionCloud; region: string }>;
  /** The export resource named `spec.name` as it exists now, or `null` when it does not. */
  observe(
    cluster: Cluster,
    spec: ExportSpec,
    options?: { signal?: AbortSignal },
  ): Promise<ExportObserved | null>;
  /** Creates or updates the resource named `spec.name` (and the delivery plumbing it needs) to match `spec`. */
  apply(cluster: Cluster, spec: ExportSpec, options?: { signal?: AbortSignal }): Promise<void>;
  /** Where the cloud writes `cluster`'s exported objects, for the hourly digests. */
  exported(cluster: Cluster, spec: ExportSpec, options?: { signal?: AbortSignal }): Promise<ExportedObjects>;
}
