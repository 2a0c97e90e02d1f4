/**
 * The Velero simulator: the controllers of a Velero server (backups, restores, storage
 * locations, schedules, server status and delete requests), installed per fake cluster.
 * They react to store events with timers, so clients only create objects and read them
 * back, exactly as against a real Velero.
 *
 * Object storage is a shared in-memory `VeleroWorld` keyed by provider, bucket and prefix:
 * a second cluster whose BackupStorageLocation points at the same bucket (a restore-drill
 * cluster) sees the backups of the first, and a Restore there "syncs" the Backup object in
 * first, like Velero's backup sync controller. Completed backups are also handed to an
 * optional `writeBackupObjects` hook in Velero's object layout
 * (`<prefix>/backups/<name>/velero-backup.json`, `<name>.tar.gz`, `<name>-logs.gz`,
 * `<name>-resource-list.json.gz`, `<name>-results.gz`), which the sandbox wires to its
 * S3 / GCS / Azure Blob emulators.
 *
 * Deliberate simplifications (and what stays faithful) are listed in `installVelero`.
 */
import { gzipSync } from 'node:zlib';
import type { KubeObject, KubeStore, ResourceType, Timers } from './kube-fake.ts';

export type VeleroProvider = 'aws' | 'gcp' | 'azure';

/** One BackupStorageLocation the simulator installs. */
export interface VeleroLocation {
  name: string;
  provider: VeleroProvider;
  bucket: string;
  prefix?: string;
  config?: Record<string, string>;
  /** Default true; false makes the BSL `Unavailable` (validation of new backups fails). */
  available?: boolean;
}

/** How Velero is installed in a cluster. Mutable at run time through `cluster.velero.config`. */
export interface VeleroInstall {
  namespace?: 'velero';
  locations: VeleroLocation[];
  /** Default true; false: the Deployment has no available replica and no controller runs (objects stay unprocessed). */
  deploymentAvailable?: boolean;
  /** Time a Backup spends InProgress (default 0). */
  backupDelayMs?: number;
  /** Time a Restore spends InProgress (default 0). */
  restoreDelayMs?: number;
  /** How long restored Deployments/StatefulSets take to become ready (default 0). */
  readyDelayMs?: number;
  failBackups?: 'Failed' | 'PartiallyFailed' | 'FailedValidation' | null;
  failRestores?: 'Failed' | 'PartiallyFailed' | null;
  /** Velero server version (image tag, ServerStatusRequest); default `v1.16.1`. */
  version?: string;
}

/** The storage location a backup was written through, as the write hook receives it. */
export interface BackupLocationRef {
  /** BSL name in the writing cluster. */
  name: string;
  /** `aws`, `gcp`, `azure` (a `velero.io/` prefix is removed). */
  provider: string;
  bucket: string;
  /** Without leading or trailing slashes; absent when empty. */
  prefix?: string;
  config?: Record<string, string>;
}

export interface BackupFile {
  /** Object key inside the bucket (`<prefix>/backups/<name>/velero-backup.json`). */
  key: string;
  body: Buffer;
}

/** Writes a completed backup's files to object storage; a rejection makes the Backup `Failed`. */
export type WriteBackupObjects = (
  location: BackupLocationRef,
  backupName: string,
  files: BackupFile[],
  context: { cluster: string },
) => Promise<void>;

/** A backup as object storage holds it. */
export interface WorldBackup {
  location: BackupLocationRef;
  name: string;
  /** The Backup object as uploaded (`velero-backup.json`). */
  backup: KubeObject;
  /** The backed-up objects (the tarball's content). */
  items: KubeObject[];
  files: BackupFile[];
  /** Cluster (name) that wrote it. */
  cluster: string;
}

function normalizeProvider(provider: string): string {
  return provider.replace(/^velero\.io\//, '');
}

function cleanPrefix(prefix: string | undefined): string {
  return (prefix ?? '').replace(/^\/+|\/+$/g, '');
}

/** Shared object storage of every simulated Velero (keyed by provider, bucket, prefix, and the Azure storage account). */
export class VeleroWorld {
  private readonly stores = new Map<string, Map<string, WorldBackup>>();
  private readonly down = new Set<string>();

  /** The key of a location's storage (`aws:bucket/prefix`). */
  static key(location: Pick<BackupLocationRef, 'provider' | 'bucket' | 'prefix' | 'config'>): string {
    const provider = normalizeProvider(location.provider);
    const account =
      provider === 'azure' && location.config?.storageAccount ? `${location.config.storageAccount}/` : '';
    return `${provider}:${account}${location.bucket}/${cleanPrefix(location.prefix)}`;
  }

  private static bucketKey(provider: string, bucket: string): string {
    return `${normalizeProvider(provider)}:${bucket}`;
  }

  put(entry: WorldBackup): void {
    const key = VeleroWorld.key(entry.location);
    let map = this.stores.get(key);
    if (!map) {
      map = new Map();
      this.stores.set(key, map);
    }
    map.set(entry.name, entry);
  }

  get(
    location: Pick<BackupLocationRef, 'provider' | 'bucket' | 'prefix' | 'config'>,
    name: string,
  ): WorldBackup | undefined {
    return this.stores.get(VeleroWorld.key(location))?.get(name);
  }

  /** Backups under one location, or everywhere. */
  list(location?: Pick<BackupLocationRef, 'provider' | 'bucket' | 'prefix' | 'config'>): WorldBackup[] {
    if (location) return [...(this.stores.get(VeleroWorld.key(location))?.values() ?? [])];
    return [...this.stores.values()].flatMap((m) => [...m.values()]);
  }

  delete(
    location: Pick<BackupLocationRef, 'provider' | 'bucket' | 'prefix' | 'config'>,
    name: string,
  ): boolean {
    return this.stores.get(VeleroWorld.key(location))?.delete(name) ?? false;
  }

  /** Takes a whole bucket down (or back up): every BSL on it becomes Unavailable at its next validation. */
  setBucketAvailable(provider: string, bucket: string, available: boolean): void {
    if (available) this.down.delete(VeleroWorld.bucketKey(provider, bucket));
    else this.down.add(VeleroWorld.bucketKey(provider, bucket));
  }

  isBucketAvailable(provider: string, bucket: string): boolean {
    return !this.down.has(VeleroWorld.bucketKey(provider, bucket));
  }

  clear(): void {
    this.stores.clear();
    this.down.clear();
  }
}

/** What the simulator needs from its cluster. */
export interface VeleroHost {
  /** Cluster name (logs, hook context). */
  cluster: string;
  store: KubeStore;
  timers: Timers;
  world: VeleroWorld;
  gitVersion(): string;
  writeBackupObjects?: WriteBackupObjects;
}

/** The running simulator of one cluster. */
export interface VeleroSim {
  readonly namespace: string;
  /** The install options, live: change `failBackups`, delays, `locations[i].available`... at any time. */
  readonly config: VeleroInstall;
  /** Marks a configured location (un)available and revalidates its BSL now. */
  setLocationAvailable(name: string, available: boolean): void;
  /** Brings the Velero Deployment up or down; while down no controller runs, queued work resumes when it is back. */
  setDeploymentAvailable(available: boolean): void;
  /** Revalidates the BSLs and the Deployment from `config` (done before every backup and restore anyway). */
  refresh(): void;
  /** Creates the Backup objects that object storage holds and this cluster lacks (Velero's backup sync); returns their names. */
  syncBackups(): string[];
  /** Creates the Backup a Schedule would create now (`<schedule>-<yyyyMMddHHmmss>`). */
  triggerSchedule(name: string): KubeObject;
}

export const VELERO_GROUP = 'velero.io';
const DEFAULT_VERSION = 'v1.16.1';
const DEFAULT_TTL = '720h0m0s';
const FORMAT_VERSION = '1.1.0';
/** Namespaces a `*` backup leaves out. */
export const SIM_SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'];
/** Resources Velero never restores. */
const NON_RESTORABLE = [
  'nodes',
  'events',
  'events.events.k8s.io',
  'backups.velero.io',
  'restores.velero.io',
  'resticrepositories.velero.io',
  'backuprepositories.velero.io',
  'csinodes.storage.k8s.io',
  'volumeattachments.storage.k8s.io',
];
/** Velero's restore order: these first, then the rest. */
const RESTORE_PRIORITY = [
  'customresourcedefinitions.apiextensions.k8s.io',
  'namespaces',
  'storageclasses.storage.k8s.io',
  'persistentvolumes',
  'persistentvolumeclaims',
  'secrets',
  'configmaps',
  'serviceaccounts',
  'limitranges',
  'pods',
];

interface CrdSpec {
  kind: string;
  plural: string;
  shortNames?: string[];
  description: string;
  columns?: { name: string; jsonPath: string; type: string; description?: string }[];
}

const VELERO_CRDS: CrdSpec[] = [
  {
    kind: 'Backup',
    plural: 'backups',
    description:
      'Backup is a Velero resource that represents the capture of Kubernetes cluster state at a point in time (API objects and associated volume state).',
  },
  {
    kind: 'BackupRepository',
    plural: 'backuprepositories',
    description: 'BackupRepository is a repository of data backed up by Velero.',
  },
  {
    kind: 'BackupStorageLocation',
    plural: 'backupstoragelocations',
    shortNames: ['bsl'],
    description: 'BackupStorageLocation is a location where Velero stores backup objects',
    columns: [
      {
        name: 'Phase',
        jsonPath: '.status.phase',
        type: 'string',
        description: 'Backup Storage Location status such as Available/Unavailable',
      },
      {
        name: 'Last Validated',
        jsonPath: '.status.lastValidationTime',
        type: 'date',
        description: 'LastValidationTime is the last time the backup store location was validated',
      },
      { name: 'Age', jsonPath: '.metadata.creationTimestamp', type: 'date' },
      {
        name: 'Default',
        jsonPath: '.spec.default',
        type: 'boolean',
        description: 'Default backup storage location',
      },
    ],
  },
  {
    kind: 'DeleteBackupRequest',
    plural: 'deletebackuprequests',
    description: 'DeleteBackupRequest is a request to delete one or more backups.',
  },
  {
    kind: 'DownloadRequest',
    plural: 'downloadrequests',
    description:
      'DownloadRequest is a request to download an artifact from backup object storage, such as a backup log file.',
  },
  {
    kind: 'PodVolumeBackup',
    plural: 'podvolumebackups',
    description: 'PodVolumeBackup represents a backup of a pod volume.',
  },
  {
    kind: 'PodVolumeRestore',
    plural: 'podvolumerestores',
    description: 'PodVolumeRestore represents a restore of a pod volume.',
  },
  {
    kind: 'Restore',
    plural: 'restores',
    description:
      'Restore is a Velero resource that represents the application of resources from a Velero backup to a target Kubernetes cluster.',
  },
  {
    kind: 'Schedule',
    plural: 'schedules',
    description:
      'Schedule is a Velero resource that represents a pre-scheduled or periodic Backup that should be run.',
    columns: [
      { name: 'Status', jsonPath: '.status.phase', type: 'string', description: 'Status of the schedule' },
      {
        name: 'Schedule',
        jsonPath: '.spec.schedule',
        type: 'string',
        description: 'A Cron expression defining when to run the Backup',
      },
      {
        name: 'LastBackup',
        jsonPath: '.status.lastBackup',
        type: 'date',
        description: 'The last time a Backup was run for this schedule',
      },
      { name: 'Age', jsonPath: '.metadata.creationTimestamp', type: 'date' },
      { name: 'Paused', jsonPath: '.spec.paused', type: 'boolean' },
    ],
  },
  {
    kind: 'ServerStatusRequest',
    plural: 'serverstatusrequests',
    shortNames: ['ssr'],
    description:
      'ServerStatusRequest is a request to access current status information about the Velero server.',
  },
  {
    kind: 'VolumeSnapshotLocation',
    plural: 'volumesnapshotlocations',
    shortNames: ['vsl'],
    description: 'VolumeSnapshotLocation is a location where Velero stores volume snapshots.',
  },
];

/** The CustomResourceDefinitions `velero install` creates (schemas reduced to preserve-unknown-fields). */
export function veleroCrds(): KubeObject[] {
  return VELERO_CRDS.map((c) => ({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${c.plural}.${VELERO_GROUP}`,
      labels: { component: 'velero' },
      annotations: { 'controller-gen.kubebuilder.io/version': 'v0.16.5' },
    },
    spec: {
      group: VELERO_GROUP,
      names: {
        kind: c.kind,
        listKind: `${c.kind}List`,
        plural: c.plural,
        ...(c.shortNames ? { shortNames: c.shortNames } : {}),
        singular: c.kind.toLowerCase(),
      },
      scope: 'Namespaced',
      versions: [
        {
          ...(c.columns ? { additionalPrinterColumns: c.columns } : {}),
          name: 'v1',
          schema: {
            openAPIV3Schema: {
              description: c.description,
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              },
              type: 'object',
            },
          },
          served: true,
          storage: true,
          ...(c.kind === 'BackupStorageLocation' ? { subresources: {} } : {}),
        },
      ],
    },
  }));
}

/** Milliseconds of a Go duration (`720h0m0s`, `1h30m`, `90s`, `1.5h`); undefined when invalid. */
export function parseGoDuration(text: string): number | undefined {
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    μs: 1e-3,
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
  };
  let rest = text.trim();
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const re = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/;
  while (rest !== '') {
    const m = re.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return sign * total;
}

function kubeTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function rec(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** Velero's namespace patterns: exact names or `*` globs. */
function glob(pattern: string, name: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name;
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replaceAll('*', '.*')
      .replaceAll('?', '.')}$`,
  );
  return re.test(name);
}

function overlap(included: string[], excluded: string[]): string[] {
  return included.filter((i) => i !== '*' && excluded.includes(i));
}

/** `metav1.LabelSelector` matching (matchLabels and matchExpressions). */
function selectorMatches(selector: unknown, labels: Record<string, string> | undefined): boolean {
  const sel = rec(selector);
  const l = labels ?? {};
  for (const [k, v] of Object.entries(rec(sel.matchLabels))) if (l[k] !== v) return false;
  for (const raw of Array.isArray(sel.matchExpressions) ? sel.matchExpressions : []) {
    const e = rec(raw);
    const key = String(e.key ?? '');
    const values = strings(e.values);
    const has = Object.hasOwn(l, key);
    if (e.operator === 'In' && !(has && values.includes(l[key]!))) return false;
    if (e.operator === 'NotIn' && has && values.includes(l[key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** Drops zero and empty values the Go types mark `omitempty`. */
function compact<T extends Record<string, unknown>>(obj: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === 0 || v === '' || (Array.isArray(v) && v.length === 0)) continue;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
      const inner = compact(v as Record<string, unknown>);
      if (Object.keys(inner).length === 0) continue;
      out[k] = inner;
    } else out[k] = v;
  }
  return out as T;
}

function qualified(obj: KubeObject): string {
  const group = obj.apiVersion.includes('/') ? obj.apiVersion.split('/')[0] : '';
  const plural = pluralOf(obj.kind);
  return group ? `${plural}.${group}` : plural;
}

const IRREGULAR: Record<string, string> = {
  Endpoints: 'endpoints',
  NetworkPolicy: 'networkpolicies',
  Ingress: 'ingresses',
};
function pluralOf(kind: string): string {
  if (IRREGULAR[kind]) return IRREGULAR[kind];
  const lower = kind.toLowerCase();
  if (lower.endsWith('s')) return `${lower}es`;
  if (lower.endsWith('y')) return `${lower.slice(0, -1)}ies`;
  return `${lower}s`;
}

// ---------------------------------------------------------------------------------------
// Tarball in Velero's layout (ustar, PAX for long paths)

function tarHeader(name: string, size: number, mtimeSeconds: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write(`${mtimeSeconds.toString(8).padStart(11, '0')}\0`, 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

function tarEntry(name: string, body: Buffer, mtimeSeconds: number): Buffer[] {
  const out: Buffer[] = [];
  const pad = (b: Buffer) => Buffer.alloc((512 - (b.length % 512)) % 512);
  if (Buffer.byteLength(name) > 100) {
    const record = ` path=${name}\n`;
    let length = Buffer.byteLength(record) + 1;
    while (String(length).length + Buffer.byteLength(record) !== length)
      length = String(length).length + Buffer.byteLength(record);
    const pax = Buffer.from(`${length}${record}`);
    out.push(
      tarHeader(`PaxHeaders/${name.slice(-80)}`.slice(0, 100), pax.length, mtimeSeconds, 'x'),
      pax,
      pad(pax),
    );
  }
  out.push(tarHeader(name.slice(0, 100), body.length, mtimeSeconds, '0'), body, pad(body));
  return out;
}

/** The `<name>.tar.gz` of a backup: `metadata/version` and `resources/<resource>/{namespaces/<ns>,cluster}/<name>.json`. */
export function backupTarball(items: KubeObject[], at: Date): Buffer {
  const mtime = Math.floor(at.getTime() / 1000);
  const parts: Buffer[] = [...tarEntry('metadata/version', Buffer.from(FORMAT_VERSION), mtime)];
  for (const item of items) {
    const where = item.metadata.namespace ? `namespaces/${item.metadata.namespace}` : 'cluster';
    parts.push(
      ...tarEntry(
        `resources/${qualified(item)}/${where}/${item.metadata.name}.json`,
        Buffer.from(JSON.stringify(item)),
        mtime,
      ),
    );
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

function resourceList(items: KubeObject[]): Record<string, string[]> {
  const list: Record<string, string[]> = {};
  for (const item of items) {
    const key = `${item.apiVersion}/${item.kind}`;
    const id = item.metadata.namespace
      ? `${item.metadata.namespace}/${item.metadata.name}`
      : (item.metadata.name ?? '');
    list[key] = [...(list[key] ?? []), id];
  }
  return list;
}

// ---------------------------------------------------------------------------------------
// The controllers

interface Types {
  backup: ResourceType;
  restore: ResourceType;
  bsl: ResourceType;
  schedule: ResourceType;
  ssr: ResourceType;
  dbr: ResourceType;
  namespace: ResourceType;
  deployment: ResourceType;
  crd: ResourceType;
}

function isApiError(error: unknown): error is { answer: { status: number; body: unknown } } {
  return typeof error === 'object' && error !== null && 'answer' in error;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function veleroDeployment(namespace: string, version: string, providers: string[]): KubeObject {
  const labels = { component: 'velero', deploy: 'velero' };
  const plugins: Record<string, string> = {
    aws: 'velero/velero-plugin-for-aws:v1.12.1',
    gcp: 'velero/velero-plugin-for-gcp:v1.12.1',
    azure: 'velero/velero-plugin-for-microsoft-azure:v1.12.1',
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'velero', namespace, labels: { component: 'velero' } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { deploy: 'velero' } },
      template: {
        metadata: {
          labels,
          annotations: {
            'prometheus.io/path': '/metrics',
            'prometheus.io/port': '8085',
            'prometheus.io/scrape': 'true',
          },
        },
        spec: {
          serviceAccountName: 'velero',
          restartPolicy: 'Always',
          initContainers: [...new Set(providers)]
            .filter((p) => plugins[p])
            .map((p) => ({
              name: `velero-plugin-for-${p}`,
              image: plugins[p],
              imagePullPolicy: 'IfNotPresent',
              volumeMounts: [{ mountPath: '/target', name: 'plugins' }],
            })),
          containers: [
            {
              name: 'velero',
              image: `velero/velero:${version}`,
              imagePullPolicy: 'IfNotPresent',
              command: ['/velero'],
              args: ['server', '--features=', '--uploader-type=kopia'],
              ports: [{ name: 'metrics', containerPort: 8085, protocol: 'TCP' }],
              resources: {
                requests: { cpu: '500m', memory: '128Mi' },
                limits: { cpu: '1', memory: '512Mi' },
              },
              env: [
                { name: 'VELERO_SCRATCH_DIR', value: '/scratch' },
                {
                  name: 'VELERO_NAMESPACE',
                  valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } },
                },
              ],
              volumeMounts: [
                { mountPath: '/plugins', name: 'plugins' },
                { mountPath: '/scratch', name: 'scratch' },
              ],
            },
          ],
          volumes: [
            { name: 'plugins', emptyDir: {} },
            { name: 'scratch', emptyDir: {} },
          ],
        },
      },
    },
  };
}

function veleroDeploymentStatus(available: boolean, at: string): Record<string, unknown> {
  const rs = 'velero-6b9c7d5f4c';
  return available
    ? {
        observedGeneration: 1,
        replicas: 1,
        updatedReplicas: 1,
        readyReplicas: 1,
        availableReplicas: 1,
        conditions: [
          {
            type: 'Available',
            status: 'True',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
          },
          {
            type: 'Progressing',
            status: 'True',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'NewReplicaSetAvailable',
            message: `ReplicaSet "${rs}" has successfully progressed.`,
          },
        ],
      }
    : {
        observedGeneration: 1,
        replicas: 1,
        updatedReplicas: 1,
        unavailableReplicas: 1,
        conditions: [
          {
            type: 'Available',
            status: 'False',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'MinimumReplicasUnavailable',
            message: 'Deployment does not have minimum availability.',
          },
          {
            type: 'Progressing',
            status: 'True',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'ReplicaSetUpdated',
            message: `ReplicaSet "${rs}" is progressing.`,
          },
        ],
      };
}

function bslRef(bsl: KubeObject): BackupLocationRef {
  const spec = rec(bsl.spec);
  const storage = rec(spec.objectStorage);
  const prefix = cleanPrefix(typeof storage.prefix === 'string' ? storage.prefix : undefined);
  const config = rec(spec.config) as Record<string, string>;
  return {
    name: bsl.metadata.name ?? '',
    provider: normalizeProvider(String(spec.provider ?? '')),
    bucket: String(storage.bucket ?? ''),
    ...(prefix ? { prefix } : {}),
    ...(Object.keys(config).length > 0 ? { config } : {}),
  };
}

function fileKey(location: BackupLocationRef, name: string, file: string): string {
  return `${location.prefix ? `${location.prefix}/` : ''}backups/${name}/${file}`;
}

/**
 * Installs Velero in a cluster: its CRDs, the `velero` namespace and Deployment, one
 * BackupStorageLocation per configured location, and the controllers.
 *
 * Faithful: phases and their order, validation messages, defaults written back to the
 * Backup spec (storageLocation, ttl) and the `velero.io/storage-location` label, status
 * fields and their `omitempty` behaviour (a zero count is absent), restore labels, the
 * skip-with-warning of existing objects, the refusal to restore non-restorable
 * resources, BSL sync from shared storage. Simplified: no volumes or snapshots, no
 * hooks, no resource filters (`includedResources` and friends are ignored), a
 * `labelSelector` filters namespaced objects only, backups and restores run in parallel.
 */
export function installVelero(host: VeleroHost, install: VeleroInstall): VeleroSim {
  const { store, timers, world } = host;
  const config = install;
  const ns = config.namespace ?? 'velero';
  const version = config.version ?? DEFAULT_VERSION;
  const now = () => timers.now();

  const crdType = store.mustResource('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
  for (const crd of veleroCrds()) {
    if (!store.get(crdType, undefined, crd.metadata.name ?? '')) store.create(crdType, crd);
  }
  const T: Types = {
    backup: store.mustResource('velero.io/v1', 'Backup'),
    restore: store.mustResource('velero.io/v1', 'Restore'),
    bsl: store.mustResource('velero.io/v1', 'BackupStorageLocation'),
    schedule: store.mustResource('velero.io/v1', 'Schedule'),
    ssr: store.mustResource('velero.io/v1', 'ServerStatusRequest'),
    dbr: store.mustResource('velero.io/v1', 'DeleteBackupRequest'),
    namespace: store.mustResource('v1', 'Namespace'),
    deployment: store.mustResource('apps/v1', 'Deployment'),
    crd: crdType,
  };
  if (!store.get(T.namespace, undefined, ns)) {
    store.create(T.namespace, { metadata: { name: ns, labels: { component: 'velero' } } });
  }
  const deploymentUp = () => config.deploymentAvailable !== false;
  if (!store.get(T.deployment, ns, 'velero')) {
    const deployment = veleroDeployment(
      ns,
      version,
      config.locations.map((l) => l.provider),
    );
    deployment.status = veleroDeploymentStatus(deploymentUp(), kubeTime(now()));
    store.create(T.deployment, deployment, { namespace: ns, keepStatus: true });
  }

  const locationAvailable = (bsl: KubeObject): boolean => {
    const ref = bslRef(bsl);
    const configured = config.locations.find((l) => l.name === bsl.metadata.name);
    return (
      (configured ? configured.available !== false : true) &&
      world.isBucketAvailable(ref.provider, ref.bucket)
    );
  };
  const bslStatus = (bsl: KubeObject): Record<string, unknown> => {
    const available = locationAvailable(bsl);
    return {
      phase: available ? 'Available' : 'Unavailable',
      lastValidationTime: kubeTime(now()),
      ...(available
        ? {}
        : {
            message: `BackupStorageLocation "${bsl.metadata.name}" is unavailable: rpc error: code = Unknown desc = bucket "${bslRef(bsl).bucket}" is not reachable`,
          }),
    };
  };

  config.locations.forEach((location, i) => {
    if (store.get(T.bsl, ns, location.name)) return;
    const prefix = cleanPrefix(location.prefix);
    const bsl: KubeObject = {
      apiVersion: 'velero.io/v1',
      kind: 'BackupStorageLocation',
      metadata: { name: location.name, namespace: ns, labels: { component: 'velero' } },
      spec: {
        provider: location.provider,
        objectStorage: { bucket: location.bucket, ...(prefix ? { prefix } : {}) },
        ...(location.config ? { config: { ...location.config } } : {}),
        default: i === 0,
      },
    };
    bsl.status = bslStatus(bsl);
    store.create(T.bsl, bsl, { namespace: ns, keepStatus: true });
  });

  const refresh = () => {
    for (const bsl of store.list(T.bsl, { namespace: ns }).items) {
      const phase = locationAvailable(bsl) ? 'Available' : 'Unavailable';
      if (rec(bsl.status).phase !== phase) {
        store.update(T.bsl, ns, bsl.metadata.name ?? '', (obj) => {
          obj.status = bslStatus(obj);
        });
      }
    }
    const deployment = store.get(T.deployment, ns, 'velero');
    if (deployment) {
      const up = deploymentUp();
      const isUp = Number(rec(deployment.status).availableReplicas ?? 0) > 0;
      if (up !== isUp) {
        store.update(T.deployment, ns, 'velero', (obj) => {
          obj.status = veleroDeploymentStatus(up, kubeTime(now()));
        });
      }
    }
  };

  // Work waits while the Velero Deployment is down, as objects wait for a crashed server.
  const queued: (() => void)[] = [];
  const enqueue = (work: () => unknown) => {
    if (!deploymentUp()) {
      queued.push(() => timers.after(0, work));
      return;
    }
    timers.after(0, work);
  };
  const drain = () => {
    while (deploymentUp() && queued.length > 0) queued.shift()?.();
  };
  const guarded = (work: () => unknown) => () => {
    if (!deploymentUp()) {
      queued.push(() => timers.after(0, work));
      return undefined;
    }
    return work();
  };

  const setStatus = (
    rt: ResourceType,
    name: string,
    status: Record<string, unknown>,
    mutate?: (obj: KubeObject) => void,
  ) =>
    store.update(rt, ns, name, (obj) => {
      mutate?.(obj);
      obj.status = compact(status);
    });

  // --- backups -------------------------------------------------------------------------

  const collectItems = (spec: Record<string, unknown>): KubeObject[] => {
    const included = strings(spec.includedNamespaces);
    const excluded = strings(spec.excludedNamespaces);
    const all = included.length === 0 || included.includes('*');
    const namespaces = store.list(T.namespace).items.filter((n) => {
      const name = n.metadata.name ?? '';
      if (excluded.some((p) => glob(p, name))) return false;
      if (all && included.length <= 1) {
        // Velero itself knows no Fleetward label: what to leave out is the caller's exclude list.
        return !SIM_SYSTEM_NAMESPACES.includes(name) && name !== ns;
      }
      return included.some((p) => glob(p, name));
    });
    const items: KubeObject[] = [];
    const seen = new Set<string>();
    const types = store.resources().filter((rt) => {
      const key = `${rt.plural}.${rt.group}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const keep = (o: KubeObject) =>
      o.metadata.labels?.['velero.io/exclude-from-backup'] !== 'true' &&
      (spec.labelSelector === undefined ||
        spec.labelSelector === null ||
        selectorMatches(spec.labelSelector, o.metadata.labels));
    for (const n of namespaces) {
      items.push(n);
      for (const rt of types) {
        if (!rt.namespaced) continue;
        for (const o of store.list(rt, { namespace: n.metadata.name ?? '' }).items)
          if (keep(o)) items.push(o);
      }
    }
    if (spec.includeClusterResources === true) {
      for (const rt of types) {
        if (rt.namespaced || (rt.plural === 'namespaces' && !rt.group)) continue;
        for (const o of store.list(rt).items) if (keep(o)) items.push(o);
      }
    }
    return items;
  };

  const startBackup = (name: string) => {
    refresh();
    const backup = store.get(T.backup, ns, name);
    if (!backup) return;
    const status = rec(backup.status);
    if (status.phase !== undefined && status.phase !== '' && status.phase !== 'New') return;
    const spec = rec(backup.spec);
    const bsls = store.list(T.bsl, { namespace: ns }).items;
    const defaultBsl = bsls.find((b) => rec(b.spec).default === true);
    const locationName =
      typeof spec.storageLocation === 'string' && spec.storageLocation
        ? spec.storageLocation
        : (defaultBsl?.metadata.name ?? 'default');
    const ttl = typeof spec.ttl === 'string' && spec.ttl ? spec.ttl : DEFAULT_TTL;
    const errors: string[] = [];
    for (const o of overlap(strings(spec.includedNamespaces), strings(spec.excludedNamespaces))) {
      errors.push(
        `Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: ${o}`,
      );
    }
    if (parseGoDuration(ttl) === undefined) errors.push(`Invalid ttl: time: invalid duration "${ttl}"`);
    const bsl = bsls.find((b) => b.metadata.name === locationName);
    if (!bsl) {
      errors.push(
        `an existing backup storage location wasn't specified at backup creation time and the default '${locationName}' wasn't found. Please address this issue (see \`velero backup-location -h\` for options) and create a new backup. Error: backupstoragelocations.velero.io "${locationName}" not found`,
      );
    } else {
      if (rec(bsl.spec).accessMode === 'ReadOnly') {
        errors.push(
          `backup can't be created because backup storage location ${locationName} is currently in read-only mode`,
        );
      }
      if (rec(bsl.status).phase !== 'Available') {
        errors.push(
          `backup can't be created because BackupStorageLocation ${locationName} is in Unavailable status.`,
        );
      }
    }
    if (config.failBackups === 'FailedValidation')
      errors.push('velero-sim: simulated validation failure (failBackups=FailedValidation)');
    const gitVersion = host.gitVersion();
    const vm = /^v?(\d+)\.(\d+)/.exec(gitVersion);
    setStatus(
      T.backup,
      name,
      errors.length > 0
        ? { phase: 'FailedValidation', validationErrors: errors, version: 1, formatVersion: FORMAT_VERSION }
        : { phase: 'New', version: 1, formatVersion: FORMAT_VERSION },
      (obj) => {
        const s = rec(obj.spec);
        obj.spec = {
          ...s,
          storageLocation: locationName,
          ttl,
          csiSnapshotTimeout: s.csiSnapshotTimeout ?? '10m0s',
          itemOperationTimeout: s.itemOperationTimeout ?? '4h0m0s',
        };
        obj.metadata.labels = { ...obj.metadata.labels, 'velero.io/storage-location': locationName };
        obj.metadata.annotations = {
          ...obj.metadata.annotations,
          'velero.io/source-cluster-k8s-gitversion': gitVersion,
          'velero.io/source-cluster-k8s-major-version': vm?.[1] ?? '1',
          'velero.io/source-cluster-k8s-minor-version': vm?.[2] ?? '0',
          'velero.io/resource-timeout': '10m0s',
        };
      },
    );
    if (errors.length > 0 || !bsl) return;
    const location = bslRef(bsl);
    timers.after(
      0,
      guarded(() => runBackup(name, location, ttl)),
    );
  };

  const runBackup = (name: string, location: BackupLocationRef, ttl: string) => {
    const backup = store.get(T.backup, ns, name);
    if (!backup || rec(backup.status).phase !== 'New') return;
    const items = collectItems(rec(backup.spec));
    const started = kubeTime(now());
    setStatus(T.backup, name, {
      ...rec(backup.status),
      phase: 'InProgress',
      startTimestamp: started,
      progress: { totalItems: items.length },
    });
    timers.after(config.backupDelayMs ?? 0, () => finishBackup(name, location, ttl, items));
  };

  const finishBackup = async (
    name: string,
    location: BackupLocationRef,
    ttl: string,
    snapshot: KubeObject[],
  ) => {
    const backup = store.get(T.backup, ns, name);
    if (!backup || rec(backup.status).phase !== 'InProgress') return;
    const failure =
      config.failBackups === 'Failed' || config.failBackups === 'PartiallyFailed' ? config.failBackups : null;
    const completedAt = now();
    let items = snapshot;
    let errors = 0;
    const logLines = [
      `time="${kubeTime(new Date(completedAt.getTime() - 1000))}" level=info msg="Setting up backup temp file" backup=${ns}/${name} logSource="pkg/controller/backup_controller.go:640"`,
      `time="${kubeTime(new Date(completedAt.getTime() - 1000))}" level=info msg="Starting backup" backup=${ns}/${name} logSource="pkg/controller/backup_controller.go:654"`,
    ];
    const errorsByNamespace: Record<string, string[]> = {};
    if (failure === 'PartiallyFailed') {
      errors = 1;
      const dropped = items.length > 1 ? items[items.length - 1] : undefined;
      if (dropped) {
        items = items.slice(0, -1);
        const where = dropped.metadata.namespace ?? '';
        errorsByNamespace[where] = [
          `velero-sim: simulated error backing up ${qualified(dropped)} ${dropped.metadata.name} (failBackups=PartiallyFailed)`,
        ];
      }
    }
    if (failure === 'Failed') items = items.slice(0, Math.floor(items.length / 2));
    for (const item of items) {
      logLines.push(
        `time="${kubeTime(completedAt)}" level=info msg="Backed up item" backup=${ns}/${name} logSource="pkg/backup/backup.go:486" name=${item.metadata.name} namespace=${item.metadata.namespace ?? ''} progress= resource=${qualified(item)}`,
      );
    }
    logLines.push(
      `time="${kubeTime(completedAt)}" level=info msg="Backed up a total of ${items.length} items" backup=${ns}/${name} logSource="pkg/backup/backup.go:544" progress=`,
    );
    const expiration = new Date(completedAt.getTime() + (parseGoDuration(ttl) ?? 0));
    const phase = failure ?? 'Completed';
    const status: Record<string, unknown> = {
      ...rec(backup.status),
      phase,
      expiration: kubeTime(expiration),
      completionTimestamp: kubeTime(completedAt),
      progress: { totalItems: snapshot.length, itemsBackedUp: items.length },
      errors,
      ...(failure === 'Failed'
        ? { failureReason: 'velero-sim: simulated failure (failBackups=Failed)' }
        : {}),
    };
    const final: KubeObject = { ...backup, status: compact(status) };
    const files: BackupFile[] = [
      { key: fileKey(location, name, 'velero-backup.json'), body: Buffer.from(JSON.stringify(final)) },
      {
        key: fileKey(location, name, `${name}-logs.gz`),
        body: gzipSync(Buffer.from(`${logLines.join('\n')}\n`)),
      },
    ];
    if (failure !== 'Failed') {
      files.push(
        { key: fileKey(location, name, `${name}.tar.gz`), body: backupTarball(items, completedAt) },
        {
          key: fileKey(location, name, `${name}-resource-list.json.gz`),
          body: gzipSync(Buffer.from(JSON.stringify(resourceList(items)))),
        },
        {
          key: fileKey(location, name, `${name}-results.gz`),
          body: gzipSync(
            Buffer.from(
              JSON.stringify({
                errors: Object.keys(errorsByNamespace).length > 0 ? { namespaces: errorsByNamespace } : {},
                warnings: {},
              }),
            ),
          ),
        },
      );
    }
    let uploaded = true;
    if (host.writeBackupObjects) {
      try {
        await host.writeBackupObjects(location, name, files, { cluster: host.cluster });
      } catch (error) {
        uploaded = false;
        status.phase = 'Failed';
        status.errors = errors + 1;
        status.failureReason = `error persisting backup: ${message(error)}`;
      }
    }
    if (timers.stopped) return;
    if (uploaded && phase !== 'Failed') {
      world.put({ location, name, backup: final, items, files, cluster: host.cluster });
    }
    setStatus(T.backup, name, status);
  };

  // --- sync -----------------------------------------------------------------------------

  const syncFrom = (only?: string): string[] => {
    const synced: string[] = [];
    for (const bsl of store.list(T.bsl, { namespace: ns }).items) {
      if (rec(bsl.status).phase !== 'Available') continue;
      const ref = bslRef(bsl);
      for (const entry of world.list(ref)) {
        if (only !== undefined && entry.name !== only) continue;
        if (store.get(T.backup, ns, entry.name)) continue;
        const source = entry.backup;
        store.create(
          T.backup,
          {
            apiVersion: 'velero.io/v1',
            kind: 'Backup',
            metadata: {
              name: entry.name,
              namespace: ns,
              labels: { ...source.metadata.labels, 'velero.io/storage-location': ref.name },
              ...(source.metadata.annotations ? { annotations: { ...source.metadata.annotations } } : {}),
            },
            spec: { ...rec(source.spec), storageLocation: ref.name },
            status: structuredClone(source.status),
          },
          { namespace: ns, keepStatus: true },
        );
        synced.push(entry.name);
      }
    }
    return synced;
  };

  // --- restores -------------------------------------------------------------------------

  interface PlanItem {
    item: KubeObject;
    namespace?: string;
    name: string;
  }

  const planRestore = (spec: Record<string, unknown>, items: KubeObject[]): PlanItem[] => {
    const included = strings(spec.includedNamespaces);
    const excluded = strings(spec.excludedNamespaces);
    const all = included.length === 0 || included.includes('*');
    const mapping = rec(spec.namespaceMapping) as Record<string, string>;
    const nsIncluded = (n: string) =>
      (all || included.some((p) => glob(p, n))) && !excluded.some((p) => glob(p, n));
    const clusterResources =
      spec.includeClusterResources === true || (spec.includeClusterResources == null && all);
    const plan: PlanItem[] = [];
    for (const item of items) {
      if (NON_RESTORABLE.includes(qualified(item))) continue;
      if (
        spec.labelSelector != null &&
        item.kind !== 'Namespace' &&
        !selectorMatches(spec.labelSelector, item.metadata.labels)
      )
        continue;
      const name = item.metadata.name ?? '';
      if (item.kind === 'Namespace' && item.apiVersion === 'v1') {
        if (nsIncluded(name)) plan.push({ item, name: mapping[name] ?? name });
      } else if (item.metadata.namespace) {
        const source = item.metadata.namespace;
        if (nsIncluded(source)) plan.push({ item, namespace: mapping[source] ?? source, name });
      } else if (clusterResources) plan.push({ item, name });
    }
    const rank = (p: PlanItem) => {
      const i = RESTORE_PRIORITY.indexOf(qualified(p.item));
      return i < 0 ? RESTORE_PRIORITY.length : i;
    };
    return plan
      .map((p, i) => ({ p, i }))
      .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
      .map(({ p }) => p);
  };

  /** Restores one item: `created`, `exists` (skipped, with a warning unless a namespace) or an error message. */
  const restoreItem = (
    p: PlanItem,
    restoreName: string,
    backupName: string,
  ): 'created' | 'exists' | string => {
    const rt = store.resourceFor(p.item.apiVersion, p.item.kind);
    const where = p.namespace ? `${p.namespace}/` : '';
    if (!rt)
      return `error restoring ${qualified(p.item)}/${where}${p.name}: the server could not find the requested resource`;
    if (p.namespace && !store.get(T.namespace, undefined, p.namespace)) {
      store.create(T.namespace, {
        metadata: {
          name: p.namespace,
          labels: { 'velero.io/backup-name': backupName, 'velero.io/restore-name': restoreName },
        },
      });
    }
    if (store.get(rt, p.namespace, p.name)) return 'exists';
    const source = structuredClone(p.item);
    const labels: Record<string, string> = { ...source.metadata.labels };
    if (rt.plural === 'namespaces' && !rt.group) delete labels['kubernetes.io/metadata.name'];
    labels['velero.io/backup-name'] = backupName;
    labels['velero.io/restore-name'] = restoreName;
    const object: KubeObject = {
      ...source,
      metadata: {
        name: p.name,
        ...(p.namespace ? { namespace: p.namespace } : {}),
        labels,
        ...(source.metadata.annotations ? { annotations: source.metadata.annotations } : {}),
      },
    };
    delete object.status;
    if (rt.plural === 'namespaces' && !rt.group) delete object.spec;
    try {
      store.create(rt, object, {
        ...(p.namespace ? { namespace: p.namespace } : {}),
        readyAfterMs: config.readyDelayMs ?? 0,
      });
      return 'created';
    } catch (error) {
      if (isApiError(error) && error.answer.status === 409) return 'exists';
      return `error restoring ${qualified(p.item)}/${where}${p.name}: ${message(error)}`;
    }
  };

  const startRestore = (name: string) => {
    refresh();
    const restore = store.get(T.restore, ns, name);
    if (!restore) return;
    const status = rec(restore.status);
    if (status.phase !== undefined && status.phase !== '' && status.phase !== 'New') return;
    const spec = rec(restore.spec);
    const errors: string[] = [];
    for (const o of overlap(strings(spec.includedNamespaces), strings(spec.excludedNamespaces))) {
      errors.push(
        `Invalid included/excluded namespace lists: excludes list cannot contain an item in the includes list: ${o}`,
      );
    }
    let backupName = typeof spec.backupName === 'string' ? spec.backupName : '';
    const scheduleName = typeof spec.scheduleName === 'string' ? spec.scheduleName : '';
    let backup: KubeObject | undefined;
    let location: BackupLocationRef | undefined;
    if (Boolean(backupName) === Boolean(scheduleName)) {
      errors.push('Either a backup or schedule must be specified as a source for the restore, but not both');
    } else {
      if (scheduleName) {
        const candidates = store.list(T.backup, {
          namespace: ns,
          labelSelector: `velero.io/schedule-name=${scheduleName}`,
        }).items;
        const completed = candidates
          .filter((b) => rec(b.status).phase === 'Completed')
          .sort((a, b) =>
            String(rec(b.status).startTimestamp ?? '').localeCompare(
              String(rec(a.status).startTimestamp ?? ''),
            ),
          );
        if (candidates.length === 0) errors.push('No backups found for schedule');
        else if (!completed[0]) errors.push('No completed backups found for schedule');
        else backupName = completed[0].metadata.name ?? '';
      }
      if (backupName) {
        backup = store.get(T.backup, ns, backupName);
        if (!backup && syncFrom(backupName).length > 0) backup = store.get(T.backup, ns, backupName);
        if (!backup) errors.push(`Error retrieving backup: backups.velero.io "${backupName}" not found`);
        else {
          const phase = String(rec(backup.status).phase ?? '');
          const bslName = String(rec(backup.spec).storageLocation ?? '');
          const bsl = store.get(T.bsl, ns, bslName);
          if (phase !== 'Completed' && phase !== 'PartiallyFailed') {
            errors.push(
              `backup ${backupName} is in phase ${phase || 'New'}: only Completed or PartiallyFailed backups can be restored`,
            );
          } else if (!bsl) {
            errors.push(`Error retrieving backup: backupstoragelocations.velero.io "${bslName}" not found`);
          } else location = bslRef(bsl);
        }
      }
    }
    setStatus(
      T.restore,
      name,
      errors.length > 0 ? { phase: 'FailedValidation', validationErrors: errors } : { phase: 'New' },
      (obj) => {
        if (scheduleName && backupName) obj.spec = { ...rec(obj.spec), backupName };
      },
    );
    if (errors.length > 0 || !location) return;
    const from = location;
    timers.after(
      0,
      guarded(() => runRestore(name, backupName, from)),
    );
  };

  const runRestore = (name: string, backupName: string, location: BackupLocationRef) => {
    const restore = store.get(T.restore, ns, name);
    if (!restore || rec(restore.status).phase !== 'New') return;
    const started = kubeTime(now());
    const entry = world.get(location, backupName);
    if (!entry) {
      setStatus(T.restore, name, {
        phase: 'Failed',
        startTimestamp: started,
        completionTimestamp: started,
        failureReason: `error downloading backup: backup ${backupName} not found in object storage`,
      });
      return;
    }
    const plan = planRestore(rec(restore.spec), entry.items);
    setStatus(T.restore, name, {
      phase: 'InProgress',
      startTimestamp: started,
      progress: { totalItems: plan.length },
    });
    timers.after(config.restoreDelayMs ?? 0, () => finishRestore(name, backupName, plan, started));
  };

  const finishRestore = (name: string, backupName: string, plan: PlanItem[], started: string) => {
    const restore = store.get(T.restore, ns, name);
    if (!restore || rec(restore.status).phase !== 'InProgress') return;
    const failure = config.failRestores ?? null;
    if (failure === 'Failed') {
      setStatus(T.restore, name, {
        phase: 'Failed',
        startTimestamp: started,
        completionTimestamp: kubeTime(now()),
        progress: { totalItems: plan.length },
        failureReason: 'velero-sim: simulated failure (failRestores=Failed)',
      });
      return;
    }
    const limit = failure === 'PartiallyFailed' ? Math.ceil(plan.length / 2) : plan.length;
    let restored = 0;
    let warnings = 0;
    let errors = 0;
    plan.forEach((p, i) => {
      if (i >= limit) {
        errors++;
        return;
      }
      const result = restoreItem(p, name, backupName);
      if (result === 'created') restored++;
      else if (result === 'exists') {
        restored++;
        if (p.item.kind !== 'Namespace') warnings++;
      } else errors++;
    });
    setStatus(T.restore, name, {
      phase: errors > 0 ? 'PartiallyFailed' : 'Completed',
      startTimestamp: started,
      completionTimestamp: kubeTime(now()),
      progress: { totalItems: plan.length, itemsRestored: restored },
      warnings,
      errors,
    });
  };

  // --- schedules, server status, delete requests, API-created locations -----------------

  const validCron = (expr: string): string | undefined => {
    const t = expr.trim();
    if (/^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/.test(t)) return undefined;
    if (t.startsWith('@every '))
      return parseGoDuration(t.slice(7)) === undefined
        ? `invalid schedule: failed to parse duration ${t.slice(7)}`
        : undefined;
    const fields = t.split(/\s+/).filter((f) => f !== '');
    if (fields.length !== 5)
      return `invalid schedule: expected exactly 5 fields, found ${fields.length}: [${t}]`;
    return fields.every((f) => /^[\d*/,\-?A-Za-z]+$/.test(f))
      ? undefined
      : `invalid schedule: failed to parse [${t}]`;
  };

  const handleSchedule = (name: string) => {
    const schedule = store.get(T.schedule, ns, name);
    if (!schedule || rec(schedule.status).phase) return;
    const problem = validCron(String(rec(schedule.spec).schedule ?? ''));
    setStatus(
      T.schedule,
      name,
      problem ? { phase: 'FailedValidation', validationErrors: [problem] } : { phase: 'Enabled' },
    );
  };

  const handleServerStatus = (name: string) => {
    const ssr = store.get(T.ssr, ns, name);
    if (!ssr || rec(ssr.status).phase) return;
    const providers = [...new Set(config.locations.map((l) => l.provider))];
    setStatus(T.ssr, name, {
      phase: 'Processed',
      processedTimestamp: kubeTime(now()),
      serverVersion: version,
      plugins: [
        ...providers.map((p) => ({ name: `velero.io/${p}`, kind: 'ObjectStore' })),
        ...providers.map((p) => ({ name: `velero.io/${p}`, kind: 'VolumeSnapshotter' })),
        { name: 'velero.io/pod', kind: 'BackupItemAction' },
        { name: 'velero.io/pv', kind: 'BackupItemAction' },
        { name: 'velero.io/service-account', kind: 'BackupItemAction' },
      ],
    });
  };

  const handleDeleteRequest = (name: string) => {
    const dbr = store.get(T.dbr, ns, name);
    if (!dbr || rec(dbr.status).phase) return;
    const backupName = String(rec(dbr.spec).backupName ?? '');
    const backup = backupName ? store.get(T.backup, ns, backupName) : undefined;
    if (!backup) {
      setStatus(T.dbr, name, { phase: 'Processed', errors: [`backup ${backupName} not found`] }, (obj) => {
        obj.metadata.labels = { ...obj.metadata.labels, 'velero.io/backup-name': backupName };
      });
      return;
    }
    const bsl = store.get(T.bsl, ns, String(rec(backup.spec).storageLocation ?? ''));
    if (bsl) world.delete(bslRef(bsl), backupName);
    store.delete(T.backup, ns, backupName);
    setStatus(T.dbr, name, { phase: 'Processed' }, (obj) => {
      obj.metadata.labels = {
        ...obj.metadata.labels,
        'velero.io/backup-name': backupName,
        ...(backup.metadata.uid ? { 'velero.io/backup-uid': backup.metadata.uid } : {}),
      };
    });
  };

  const handleLocation = (name: string) => {
    const bsl = store.get(T.bsl, ns, name);
    if (!bsl || rec(bsl.status).phase) return;
    store.update(T.bsl, ns, name, (obj) => {
      obj.status = bslStatus(obj);
    });
  };

  store.on((event) => {
    if (
      event.type !== 'ADDED' ||
      event.object.metadata.namespace !== ns ||
      event.resource.group !== VELERO_GROUP
    )
      return;
    const name = event.object.metadata.name ?? '';
    const phase = rec(event.object.status).phase;
    const fresh = phase === undefined || phase === '' || phase === 'New';
    switch (event.resource.plural) {
      case 'backups':
        if (fresh) enqueue(() => startBackup(name));
        break;
      case 'restores':
        if (fresh) enqueue(() => startRestore(name));
        break;
      case 'schedules':
        enqueue(() => handleSchedule(name));
        break;
      case 'serverstatusrequests':
        enqueue(() => handleServerStatus(name));
        break;
      case 'deletebackuprequests':
        enqueue(() => handleDeleteRequest(name));
        break;
      case 'backupstoragelocations':
        enqueue(() => handleLocation(name));
        break;
    }
  });

  return {
    namespace: ns,
    config,
    setLocationAvailable(name, available) {
      const location = config.locations.find((l) => l.name === name);
      if (!location) throw new Error(`no configured BackupStorageLocation "${name}"`);
      location.available = available;
      refresh();
    },
    setDeploymentAvailable(available) {
      config.deploymentAvailable = available;
      refresh();
      drain();
    },
    refresh() {
      refresh();
      drain();
    },
    syncBackups: () => syncFrom(),
    triggerSchedule(name) {
      const schedule = store.get(T.schedule, ns, name);
      if (!schedule) throw new Error(`no Schedule "${name}" in ${ns}`);
      const at = now();
      const stamp = at.toISOString().replace(/[-:T]/g, '').slice(0, 14);
      const { metadata: templateMeta, ...templateSpec } = rec(rec(schedule.spec).template);
      const created = store.create(
        T.backup,
        {
          apiVersion: 'velero.io/v1',
          kind: 'Backup',
          metadata: {
            name: `${name}-${stamp}`,
            namespace: ns,
            labels: {
              ...(rec(rec(templateMeta).labels) as Record<string, string>),
              'velero.io/schedule-name': name,
            },
          },
          spec: templateSpec,
        },
        { namespace: ns },
      );
      setStatus(T.schedule, name, { ...rec(schedule.status), lastBackup: kubeTime(at) });
      return created;
    },
  };
}
