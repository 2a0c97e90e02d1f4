/**
 * Velero resources (velero.io/v1) as Fleetward creates and reads them, the labels that
 * tie them to Fleetward runs, and deterministic names per schedule window (Velero's own
 * `TimestampedName` idea: a retried invocation derives the same name and finds its object).
 */
import type { KubeObject } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';

export const VELERO_API = 'velero.io/v1';

/** Backup phases after which Velero never changes the Backup again. */
export const TERMINAL_BACKUP_PHASES = ['Completed', 'PartiallyFailed', 'Failed', 'FailedValidation'] as const;
/** Restore phases after which Velero never changes the Restore again. */
export const TERMINAL_RESTORE_PHASES = [
  'Completed',
  'PartiallyFailed',
  'Failed',
  'FailedValidation',
] as const;

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  /** Id of the Fleetward run that created the object. */
  run: 'fleetward.io/run',
  /** Schedule window (UTC, `yyyymmddhhmm`) a Backup belongs to. */
  window: 'fleetward.io/window',
  /** Marks drill scratch namespaces. */
  scratch: 'fleetward.io/scratch',
  /** The drill a scratch namespace belongs to. */
  drill: 'fleetward.io/drill',
} as const;
export const MANAGED_BY = 'fleetward';

/** Namespaces a `*` backup never includes: Kubernetes' own, Velero's, and drill scratch space. */
export const SYSTEM_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease', 'velero'];

export interface BackupSpec {
  includedNamespaces?: string[];
  excludedNamespaces?: string[];
  storageLocation?: string;
  ttl?: string;
  snapshotVolumes?: boolean;
  defaultVolumesToFsBackup?: boolean;
}

export interface BackupStatus {
  phase?: string;
  startTimestamp?: string;
  completionTimestamp?: string;
  expiration?: string;
  progress?: { totalItems?: number; itemsBackedUp?: number };
  errors?: number;
  warnings?: number;
  validationErrors?: string[];
  failureReason?: string;
}

export interface VeleroBackup extends KubeObject {
  spec: BackupSpec;
  status?: BackupStatus;
}

export interface RestoreSpec {
  backupName: string;
  includedNamespaces?: string[];
  excludedNamespaces?: string[];
  namespaceMapping?: Record<string, string>;
  includeClusterResources?: boolean;
  restorePVs?: boolean;
  existingResourcePolicy?: string;
}

export interface RestoreStatus {
  phase?: string;
  startTimestamp?: string;
  completionTimestamp?: string;
  progress?: { totalItems?: number; itemsRestored?: number };
  errors?: number;
  warnings?: number;
  validationErrors?: string[];
  failureReason?: string;
}

export interface VeleroRestore extends KubeObject {
  spec: RestoreSpec;
  status?: RestoreStatus;
}

export interface BackupStorageLocation extends KubeObject {
  spec: {
    provider: string;
    objectStorage: { bucket: string; prefix?: string };
    config?: Record<string, string>;
    default?: boolean;
  };
  status?: { phase?: string; lastValidationTime?: string; message?: string };
}

export function isTerminalBackup(phase: string | undefined): boolean {
  return (TERMINAL_BACKUP_PHASES as readonly string[]).includes(phase ?? '');
}

export function isTerminalRestore(phase: string | undefined): boolean {
  return (TERMINAL_RESTORE_PHASES as readonly string[]).includes(phase ?? '');
}

const UNITS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** Milliseconds of an EventBridge `rate(N unit)` expression. */
export function rateMs(expression: string): number {
  const m = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(expression);
  if (!m || Number(m[1]) < 1)
    throw new FleetwardError(`unsupported schedule "${expression}": expected rate(N minutes|hours|days)`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** Start of the schedule window that contains `now` (windows are aligned to the Unix epoch, UTC). */
export function windowStart(now: Date, intervalMs: number): Date {
  return new Date(Math.floor(now.getTime() / intervalMs) * intervalMs);
}

/** `yyyymmddhhmm` in UTC: label-safe and sortable. */
export function stamp(date: Date): string {
  return date.toISOString().slice(0, 16).replace(/[-T:]/g, '');
}

/** Deterministic Backup name for a window: `fleetward-<yyyymmddhhmm>` (a DNS-1123 name). */
export function backupName(window: Date): string {
  return `fleetward-${stamp(window)}`;
}

/** Velero TTL as a Go duration. */
export function ttl(days: number): string {
  return `${days * 24}h0m0s`;
}

export function buildBackup(options: {
  name: string;
  namespace: string;
  storageLocation: string;
  ttlDays: number;
  includedNamespaces: string[];
  window: Date;
  runId: string;
}): VeleroBackup {
  return {
    apiVersion: VELERO_API,
    kind: 'Backup',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: {
        [LABELS.managedBy]: MANAGED_BY,
        [LABELS.run]: options.runId,
        [LABELS.window]: stamp(options.window),
      },
    },
    spec: {
      includedNamespaces: options.includedNamespaces,
      storageLocation: options.storageLocation,
      ttl: ttl(options.ttlDays),
      snapshotVolumes: false,
      defaultVolumesToFsBackup: false,
    },
  };
}

/** A Restore would write outside drill scratch namespaces. */
export class UnsafeRestoreError extends FleetwardError {
  readonly restore: string;
  constructor(message: string, restore: string) {
    super(message);
    this.name = 'UnsafeRestoreError';
    this.restore = restore;
  }
}

/**
 * Refuses any Restore that could write into a namespace that is not a scratch namespace:
 * it must name its namespaces explicitly (no `*`), map every one of them to a name with
 * the scratch prefix, and restore no cluster-scoped resources.
 */
export function assertScratchOnly(restore: VeleroRestore, scratchPrefix: string): void {
  const name = restore.metadata.name ?? '(unnamed)';
  const included = restore.spec.includedNamespaces ?? [];
  const mapping = restore.spec.namespaceMapping ?? {};
  if (included.length === 0 || included.includes('*')) {
    throw new UnsafeRestoreError('refusing a restore without an explicit namespace list', name);
  }
  if (restore.spec.includeClusterResources !== false) {
    throw new UnsafeRestoreError('refusing a restore that may write cluster-scoped resources', name);
  }
  for (const ns of included) {
    const target = mapping[ns];
    if (!target?.startsWith(scratchPrefix)) {
      throw new UnsafeRestoreError(
        `refusing a restore that writes namespace "${target ?? ns}" (not a scratch namespace)`,
        name,
      );
    }
  }
  for (const target of Object.values(mapping)) {
    if (!target.startsWith(scratchPrefix)) {
      throw new UnsafeRestoreError(`refusing a restore that maps into namespace "${target}"`, name);
    }
  }
}

/**
 * Whether `namespace` is a scratch namespace a restore drill created: the scratch name prefix,
 * `managed-by` Fleetward, the drill label, and listed in that drill's record (`recorded` gives
 * the scratch namespaces a drill id recorded, or undefined for an unknown drill). Labels alone
 * prove nothing: anyone can set them, and Fleetward never deletes or skips what it did not create.
 */
export function isDrillScratch(
  namespace: KubeObject,
  scratchPrefix: string,
  recorded: (drillId: string) => readonly string[] | undefined,
): boolean {
  const name = namespace.metadata.name ?? '';
  const labels = namespace.metadata.labels ?? {};
  const drill = labels[LABELS.drill];
  return (
    scratchPrefix !== '' &&
    name.startsWith(scratchPrefix) &&
    labels[LABELS.managedBy] === MANAGED_BY &&
    labels[LABELS.scratch] === 'true' &&
    drill !== undefined &&
    (recorded(drill)?.includes(name) ?? false)
  );
}

/** A DNS-1123 label of at most 63 characters, keeping the end distinct with a short hash. */
export function dnsLabel(value: string): string {
  const clean = value
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  if (clean.length <= 63) return clean;
  let h = 0;
  for (const ch of value) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  return `${clean.slice(0, 54).replace(/-$/, '')}-${h.toString(36).padStart(7, '0').slice(0, 8)}`;
}

/** Scratch namespace for one source namespace of one drill. */
export function scratchNamespace(prefix: string, drill: string, namespace: string): string {
  return dnsLabel(`${prefix}${drill.replace(/^fleetward-drill-/, '')}-${namespace}`);
}

export function buildRestore(options: {
  name: string;
  namespace: string;
  backupName: string;
  namespaces: string[];
  scratchPrefix: string;
  runId: string;
}): VeleroRestore {
  const namespaceMapping = Object.fromEntries(
    options.namespaces.map((ns) => [ns, scratchNamespace(options.scratchPrefix, options.name, ns)]),
  );
  return {
    apiVersion: VELERO_API,
    kind: 'Restore',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.run]: options.runId, [LABELS.drill]: options.name },
    },
    spec: {
      backupName: options.backupName,
      includedNamespaces: options.namespaces,
      namespaceMapping,
      includeClusterResources: false,
      restorePVs: false,
      existingResourcePolicy: 'none',
    },
  };
}

/**
 * Kubernetes RBAC rules of the calls Fleetward makes inside a cluster (shared/clouds/permissions.ts):
 * Velero objects, the Velero install check and drill namespaces. Rule names are
 * `<group>/<resource>:<verb>` (`<resource>:<verb>` for the core group).
 */
export const PERMISSIONS: readonly import('../clouds/permissions.ts').PermissionGrant[] = [
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'velero.io/backups:list',
    calls: ['list velero.io/backups'],
    why: "read the Backups Fleetward made, to reconcile them and pick a drill's backup",
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'velero.io/backups:create',
    calls: ['create velero.io/backups'],
    why: 'create the scheduled Backup of each namespace group',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'velero.io/restores:create',
    calls: ['create velero.io/restores'],
    why: 'restore a backup into scratch namespaces for a drill',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'velero.io/restores:get',
    calls: ['get velero.io/restores'],
    why: "follow a drill's Restore until it ends",
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'velero.io/backupstoragelocations:list',
    calls: ['list velero.io/backupstoragelocations'],
    why: 'check Velero has an available backup storage location and where its bucket lies',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'apiextensions.k8s.io/customresourcedefinitions:get',
    calls: ['get apiextensions.k8s.io/customresourcedefinitions'],
    why: 'check Velero is installed (its backups and backupstoragelocations CRDs)',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'apps/deployments:get',
    calls: ['get apps/deployments'],
    why: 'check the Velero server deployment has an available replica',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'apps/deployments:list',
    calls: ['list apps/deployments'],
    why: 'check the Deployments a drill restored become ready',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'apps/statefulsets:list',
    calls: ['list apps/statefulsets'],
    why: 'check the StatefulSets a drill restored become ready',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'namespaces:list',
    calls: ['list namespaces'],
    why: "assign namespaces to backup groups, and find a drill's scratch namespaces",
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'namespaces:create',
    calls: ['create namespaces'],
    why: 'create the scratch namespaces a drill restores into',
  },
  {
    provider: 'kubernetes',
    holder: 'member',
    capability: 'velero',
    permission: 'namespaces:delete',
    calls: ['delete namespaces'],
    why: "delete a drill's scratch namespaces when it ends",
  },
];
