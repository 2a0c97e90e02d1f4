/**
 * A small, faithful fake Kubernetes API server over HTTPS. It answers the discovery
 * endpoints (`/version`, `/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`) the way a
 * real API server does, stores objects per cluster (namespaces, Deployments, StatefulSets,
 * CustomResourceDefinitions and every custom resource whose CRD is installed), checks the
 * bearer token, injects faults and records every request.
 *
 * Two ways to serve:
 * - `startKubeFake`: one server per cluster (paths start at `/`);
 * - `startKubeFleetFake`: ONE server for many clusters, each under `/clusters/<key>/...`
 *   (a sandbox of hundreds of clusters on one port).
 *
 * Requests are matched against a route table (`coreRoutes` for discovery, `objectRoutes`
 * for the generic object API); the Velero simulator (`velero-sim.ts`) is a set of
 * controllers reacting to store events, never branches in the handler.
 *
 * Every error is a `meta/v1` Status. Operation names in fault rules and the request log:
 * `GetVersion`, `GetAPIVersions`, `GetAPIGroupList`, `discover:<groupVersion>` (an
 * APIResourceList), `discover:<group>` (an APIGroup), and `<verb>:<groupVersion>/<resource>`
 * with verb `get|list|create|update|patch|delete|deletecollection` (`create:velero.io/v1/backups`,
 * `list:apps/v1/deployments`, `get:v1/namespaces`, `patch:apps/v1/deployments/status`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Fault, FaultInjector, RequestLog } from './faults.ts';
import { deniedMessage } from './request-log.ts';
import { localCert } from './tls.ts';
import {
  installVelero,
  type VeleroInstall,
  type VeleroSim,
  VeleroWorld,
  type WriteBackupObjects,
} from './velero-sim.ts';

/** A bearer token, or a validator of the presented token (EKS `k8s-aws-v1.` tokens, GKE/AKS access tokens). */
export type KubeToken = string | ((token: string) => boolean);

export interface KubeFakeOptions {
  /** Cluster name; the `scope` of fault rules and request-log entries. */
  name: string;
  /** Reported `gitVersion` (default `v1.33.2`). */
  gitVersion?: string;
  /** Bearer token every request must carry, or a validator (default `sandbox-token`). */
  token?: KubeToken;
  faults?: FaultInjector;
  log?: RequestLog;
  /** Directory of the CA and server certificate (shared between fakes to save key generation); default: a fresh temporary directory removed on `stop()`. */
  certDir?: string;
  /** Installs the Velero simulator in this cluster. */
  velero?: VeleroInstall | false;
  /** Object storage shared with other fakes (drill clusters reading the same bucket); default: a new one. */
  world?: VeleroWorld;
  /** Called when a Backup completes, with Velero's object-storage layout. */
  writeBackupObjects?: WriteBackupObjects;
  /** Clock and timers of every controller (default: the real ones). */
  clock?: SimClock;
  /** How long Deployments/StatefulSets created through the API take to become ready (default 0). */
  workloadReadyDelayMs?: number;
  /** How long a deleted namespace stays `Terminating` (default 0: removed at once). */
  namespaceTerminationMs?: number;
}

export interface KubeFake {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  /** PEM file of the CA that signed the server certificate. */
  caFile: string;
  /** PEM of that CA. */
  ca: string;
  /** Changes the `gitVersion` reported from now on (an upgrade). */
  setVersion(gitVersion: string): void;
  /** The cluster's objects and helpers. */
  cluster: KubeCluster;
  world: VeleroWorld;
  stop(): Promise<void>;
}

/** What a route handler answers; `body` is sent as JSON (a string body with a `text/*` content-type is sent as is). */
export interface KubeAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** The fake's mutable state that routes read. */
export interface KubeFakeState {
  name: string;
  gitVersion: string;
  /** `host:port` clients reach the server at. */
  address: string;
  /** The cluster's objects. */
  store: KubeStore;
}

/** What a route handler gets. */
export interface KubeRouteContext {
  state: KubeFakeState;
  match: RegExpExecArray;
  url: URL;
  body: unknown;
  headers: IncomingHttpHeaders;
}

/** One entry of the route table. */
export interface KubeRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Matched against the path without query string; a trailing slash is ignored. */
  path: RegExp;
  /** Operation name used in fault rules and the request log (`GetVersion`), or a function of the match. */
  operation: string | ((match: RegExpExecArray) => string);
  handle(ctx: KubeRouteContext): KubeAnswer;
}

const DEFAULT_VERSION = 'v1.33.2';
const DEFAULT_TOKEN = 'sandbox-token';

/** A `meta/v1` Status object as the API server sends for errors. */
export function kubeStatus(code: number, reason: string, message: string): KubeAnswer {
  return {
    status: code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      ...(code === 404 ? { details: {} } : {}),
      code,
    },
  };
}

/** A failure Status with `details` (name, group, kind, causes), as `k8s.io/apimachinery/pkg/api/errors` builds it. */
export function kubeStatusWithDetails(
  code: number,
  reason: string,
  message: string,
  details: Record<string, unknown>,
): KubeAnswer {
  return {
    status: code,
    body: {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      details,
      code,
    },
  };
}

/** Thrown by the store; carries the Status answer the HTTP layer sends. */
export class KubeApiError extends Error {
  readonly answer: KubeAnswer;
  constructor(answer: KubeAnswer) {
    super((answer.body as { message?: string }).message ?? `HTTP ${answer.status}`);
    this.name = 'KubeApiError';
    this.answer = answer;
  }
  get code(): number {
    return this.answer.status;
  }
}

/** `version.Info` for a `gitVersion` like `v1.33.2` or `v1.31.4-eks-0123456`. */
export function versionInfo(gitVersion: string): Record<string, string> {
  const m = /^v?(\d+)\.(\d+)/.exec(gitVersion);
  const major = m?.[1] ?? '1';
  const minor = m?.[2] ?? '0';
  // Managed distributions append `+` to minor when gitVersion carries a suffix (EKS, GKE).
  const suffixed = /^v?\d+\.\d+\.\d+[-+]/.test(gitVersion);
  return {
    major,
    minor: suffixed ? `${minor}+` : minor,
    gitVersion,
    gitCommit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    gitTreeState: 'clean',
    buildDate: '2025-06-17T18:36:28Z',
    goVersion: 'go1.24.4',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

// ---------------------------------------------------------------------------------------
// Objects, resource types, clock

export interface KubeMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
  [key: string]: unknown;
}

/** A stored object: JSON as the API server sends it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeMeta;
  [key: string]: unknown;
}

/** One resource as discovery documents it, plus what the store needs to know about it. */
export interface ResourceType {
  /** `''` for the core group. */
  group: string;
  version: string;
  kind: string;
  listKind: string;
  /** Plural: the URL segment. */
  plural: string;
  singular: string;
  namespaced: boolean;
  verbs: string[];
  shortNames?: string[];
  categories?: string[];
  /** Has a `/status` subresource: status is ignored on create and on updates of the main resource. */
  statusSubresource: boolean;
  /** `metadata.generation` is maintained. */
  generation: boolean;
  /** Served from a CustomResourceDefinition (list items carry apiVersion and kind). */
  custom: boolean;
}

/** `v1` or `<group>/<version>`. */
export function groupVersion(rt: Pick<ResourceType, 'group' | 'version'>): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** `deployments.apps`, `namespaces`: how error messages name a resource. */
function qualifiedResource(rt: ResourceType): string {
  return rt.group ? `${rt.plural}.${rt.group}` : rt.plural;
}

/** Timers of the controllers; inject a fake one to control time. */
export interface SimClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: SimClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Pending controller timers of one server; all cleared on `stop()`. */
export class Timers {
  readonly clock: SimClock;
  private readonly pending = new Set<unknown>();
  private halted = false;

  constructor(clock: SimClock = realClock) {
    this.clock = clock;
  }

  get stopped(): boolean {
    return this.halted;
  }

  now(): Date {
    return new Date(this.clock.now());
  }

  /** Runs `fn` after `ms` (errors and rejections are swallowed: a controller never crashes the server). */
  after(ms: number, fn: () => unknown): void {
    if (this.halted) return;
    const handle = this.clock.setTimeout(
      () => {
        this.pending.delete(handle);
        if (this.halted) return;
        try {
          const result = fn();
          if (result instanceof Promise) result.catch(() => {});
        } catch {
          // a controller step failed; the object simply stays as it is
        }
      },
      Math.max(0, ms),
    );
    this.pending.add(handle);
  }

  stop(): void {
    this.halted = true;
    for (const handle of this.pending) this.clock.clearTimeout(handle);
    this.pending.clear();
  }
}

/** `2025-06-17T18:36:28Z`: metav1.Time has second precision. */
export function kubeTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const CR_VERBS = ['delete', 'deletecollection', 'get', 'list', 'patch', 'create', 'update', 'watch'];

function builtin(
  group: string,
  kind: string,
  plural: string,
  options: {
    namespaced: boolean;
    verbs?: string[];
    shortNames?: string[];
    categories?: string[];
    status?: boolean;
    generation?: boolean;
  },
): ResourceType {
  return {
    group,
    version: 'v1',
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced: options.namespaced,
    verbs: options.verbs ?? ALL_VERBS,
    ...(options.shortNames ? { shortNames: options.shortNames } : {}),
    ...(options.categories ? { categories: options.categories } : {}),
    statusSubresource: options.status ?? false,
    generation: options.generation ?? false,
    custom: false,
  };
}

/** The built-in resources every fake cluster serves. */
export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  builtin('', 'ConfigMap', 'configmaps', { namespaced: true, shortNames: ['cm'] }),
  builtin('', 'Namespace', 'namespaces', {
    namespaced: false,
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    shortNames: ['ns'],
    status: true,
  }),
  builtin('', 'PersistentVolumeClaim', 'persistentvolumeclaims', {
    namespaced: true,
    shortNames: ['pvc'],
    status: true,
  }),
  builtin('', 'Secret', 'secrets', { namespaced: true }),
  builtin('', 'ServiceAccount', 'serviceaccounts', { namespaced: true, shortNames: ['sa'] }),
  builtin('', 'Service', 'services', {
    namespaced: true,
    verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    shortNames: ['svc'],
    categories: ['all'],
    status: true,
  }),
  builtin('apps', 'Deployment', 'deployments', {
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    status: true,
    generation: true,
  }),
  builtin('apps', 'StatefulSet', 'statefulsets', {
    namespaced: true,
    shortNames: ['sts'],
    categories: ['all'],
    status: true,
    generation: true,
  }),
  builtin('batch', 'CronJob', 'cronjobs', {
    namespaced: true,
    shortNames: ['cj'],
    categories: ['all'],
    status: true,
    generation: true,
  }),
  builtin('batch', 'Job', 'jobs', { namespaced: true, categories: ['all'], status: true, generation: true }),
  builtin('apiextensions.k8s.io', 'CustomResourceDefinition', 'customresourcedefinitions', {
    namespaced: false,
    shortNames: ['crd', 'crds'],
    categories: ['api-extensions'],
    status: true,
    generation: true,
  }),
];

/** Built-in groups in the order a real server lists them. */
const BUILTIN_GROUPS = ['apps', 'batch', 'apiextensions.k8s.io'];

export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceType;
  /** A copy of the object after the change (before it, for DELETED). */
  object: KubeObject;
  /** The change came through the HTTP API (not a controller or a test helper). */
  viaApi: boolean;
  /** MODIFIED: the generation changed (spec edited). */
  specChanged?: boolean;
  /** ADDED: the caller kept the status it gave (seeded objects); controllers leave it alone. */
  keepStatus?: boolean;
  /** ADDED: how long the workload takes to become ready (restored workloads). */
  readyAfterMs?: number;
}

export interface CreateOptions {
  /** The namespace of the request path (namespaced resources). */
  namespace?: string;
  dryRun?: boolean;
  /** Keep `status` as given even for resources with a status subresource (test seeding). */
  keepStatus?: boolean;
  readyAfterMs?: number;
  viaApi?: boolean;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  limit?: number;
  continue?: string;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
  continue?: string;
  remainingItemCount?: number;
}

type Cause = { reason: string; message: string; field: string };

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const GENERATE_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rec(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

/** JSON with sorted keys: equality that ignores key order. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (isRecord(value)) {
    return `{${Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

const META_ORDER = [
  'name',
  'generateName',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
];

/** Orders an object like the API server serializes it: apiVersion, kind, metadata, spec..., status last. */
function ordered(obj: KubeObject): KubeObject {
  const meta: KubeMeta = {};
  for (const k of META_ORDER) if (obj.metadata[k] !== undefined) meta[k] = obj.metadata[k];
  for (const [k, v] of Object.entries(obj.metadata)) if (!(k in meta) && v !== undefined) meta[k] = v;
  const out: KubeObject = { apiVersion: obj.apiVersion, kind: obj.kind, metadata: meta };
  for (const [k, v] of Object.entries(obj)) {
    if (k !== 'apiVersion' && k !== 'kind' && k !== 'metadata' && k !== 'status' && v !== undefined)
      out[k] = v;
  }
  if (obj.status !== undefined) out.status = obj.status;
  return out;
}

function validateLabels(labels: unknown, field: string): Cause[] {
  if (labels === undefined) return [];
  if (!isRecord(labels))
    return [{ reason: 'FieldValueInvalid', message: 'Invalid value: must be a map', field }];
  const causes: Cause[] = [];
  for (const [key, value] of Object.entries(labels)) {
    const slash = key.lastIndexOf('/');
    const prefix = slash >= 0 ? key.slice(0, slash) : '';
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if (
      (slash >= 0 && (prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix))) ||
      name.length > 63 ||
      !QUALIFIED_NAME.test(name)
    ) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(key)}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
        field,
      });
    }
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE.test(value)) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: ${JSON.stringify(value)}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`,
        field,
      });
    }
  }
  return causes;
}

function invalid(rt: ResourceType, name: string, causes: Cause[]): KubeApiError {
  const qualifiedKind = rt.group ? `${rt.kind}.${rt.group}` : rt.kind;
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const text = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
  return new KubeApiError(
    kubeStatusWithDetails(422, 'Invalid', `${qualifiedKind} ${JSON.stringify(name)} is invalid: ${text}`, {
      name,
      ...(rt.group ? { group: rt.group } : {}),
      kind: rt.kind,
      causes,
    }),
  );
}

function notFound(rt: ResourceType, name: string): KubeApiError {
  return new KubeApiError(
    kubeStatusWithDetails(404, 'NotFound', `${qualifiedResource(rt)} ${JSON.stringify(name)} not found`, {
      name,
      ...(rt.group ? { group: rt.group } : {}),
      kind: rt.plural,
    }),
  );
}

function badRequest(message: string): KubeApiError {
  return new KubeApiError(kubeStatus(400, 'BadRequest', message));
}

function conflict(rt: ResourceType, name: string): KubeApiError {
  return new KubeApiError(
    kubeStatusWithDetails(
      409,
      'Conflict',
      `Operation cannot be fulfilled on ${qualifiedResource(rt)} ${JSON.stringify(name)}: the object has been modified; please apply your changes to the latest version and try again`,
      { name, ...(rt.group ? { group: rt.group } : {}), kind: rt.plural },
    ),
  );
}

function shortHash(text: string, length = 10): string {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  let out = '';
  let x = h;
  for (let i = 0; i < length; i++) {
    out += GENERATE_CHARS[x % GENERATE_CHARS.length];
    x = Math.floor(x / GENERATE_CHARS.length) || Math.imul(x ^ (i + 1), 2654435761) >>> 0;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Label and field selectors

type Requirement =
  | { key: string; op: '=' | '!='; value: string }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | '!exists' };

function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

/** Parses a label selector (`a=b,c!=d`, `env in (a,b)`, `!key`, `key`); a bad one is a 400. */
export function parseLabelSelector(selector: string): Requirement[] {
  const reqs: Requirement[] = [];
  for (const term of splitTopLevel(selector)) {
    let m = /^([^\s!=(),]+)\s*(==|=|!=)\s*([^\s,()!=]*)$/.exec(term);
    if (m) {
      reqs.push({ key: m[1]!, op: m[2] === '!=' ? '!=' : '=', value: m[3]! });
      continue;
    }
    m = /^([^\s!=(),]+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term);
    if (m) {
      const values = m[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      reqs.push({ key: m[1]!, op: m[2] as 'in' | 'notin', values });
      continue;
    }
    m = /^!\s*([^\s!=(),]+)$/.exec(term);
    if (m) {
      reqs.push({ key: m[1]!, op: '!exists' });
      continue;
    }
    m = /^([^\s!=(),]+)$/.exec(term);
    if (m) {
      reqs.push({ key: m[1]!, op: 'exists' });
      continue;
    }
    throw badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
  }
  return reqs;
}

export function matchesLabels(labels: Record<string, string> | undefined, reqs: Requirement[]): boolean {
  const l = labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case '=':
        return has && l[r.key] === r.value;
      case '!=':
        return !has || l[r.key] !== r.value;
      case 'in':
        return has && r.values.includes(l[r.key]!);
      case 'notin':
        return !has || !r.values.includes(l[r.key]!);
      case 'exists':
        return has;
      case '!exists':
        return !has;
    }
    return false;
  });
}

function fieldMatcher(rt: ResourceType, selector: string | undefined): (obj: KubeObject) => boolean {
  if (!selector) return () => true;
  const checks: ((obj: KubeObject) => boolean)[] = [];
  for (const term of splitTopLevel(selector)) {
    const m = /^([^\s!=]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const field = m[1]!;
    const negate = m[2] === '!=';
    const value = m[3]!;
    let read: (obj: KubeObject) => unknown;
    if (field === 'metadata.name') read = (o) => o.metadata.name;
    else if (field === 'metadata.namespace' && rt.namespaced) read = (o) => o.metadata.namespace;
    else if (field === 'status.phase' && rt.plural === 'namespaces') read = (o) => rec(o.status).phase;
    else throw badRequest(`field label not supported: ${field}`);
    checks.push((o) => (String(read(o) ?? '') === value) !== negate);
  }
  return (obj) => checks.every((c) => c(obj));
}

// ---------------------------------------------------------------------------------------
// Patches

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return clone(patch);
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer: ${path}`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
}

/** RFC 6902 JSON patch (add, remove, replace, test, copy, move). */
function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json patch must be an array of operations');
  let doc = clone(target);
  const parentOf = (path: string[]): { parent: unknown; key: string } => {
    let node: unknown = doc;
    for (const p of path.slice(0, -1)) {
      node = Array.isArray(node) ? node[Number(p)] : rec(node)[p];
      if (node === undefined) throw badRequest(`doc is missing path: ${path.join('/')}`);
    }
    return { parent: node, key: path[path.length - 1] ?? '' };
  };
  const getAt = (path: string[]): unknown => {
    let node: unknown = doc;
    for (const p of path) node = Array.isArray(node) ? node[Number(p)] : rec(node)[p];
    return node;
  };
  const remove = (path: string[]): unknown => {
    const { parent, key } = parentOf(path);
    if (Array.isArray(parent)) return parent.splice(Number(key), 1)[0];
    const old = rec(parent)[key];
    if (old === undefined) throw badRequest(`unable to remove nonexistent key: ${key}`);
    delete rec(parent)[key];
    return old;
  };
  const add = (path: string[], value: unknown, replace: boolean) => {
    if (path.length === 0) {
      doc = clone(value);
      return;
    }
    const { parent, key } = parentOf(path);
    if (Array.isArray(parent)) {
      const index = key === '-' ? parent.length : Number(key);
      if (replace) parent[index] = clone(value);
      else parent.splice(index, 0, clone(value));
    } else if (isRecord(parent)) {
      if (replace && parent[key] === undefined)
        throw badRequest(`replace operation does not apply: doc is missing key: ${key}`);
      parent[key] = clone(value);
    } else throw badRequest(`doc is missing path: ${path.join('/')}`);
  };
  for (const raw of ops) {
    const op = rec(raw);
    const path = pointer(String(op.path ?? ''));
    switch (op.op) {
      case 'add':
        add(path, op.value, false);
        break;
      case 'replace':
        add(path, op.value, true);
        break;
      case 'remove':
        remove(path);
        break;
      case 'test':
        if (stable(getAt(path)) !== stable(op.value))
          throw new KubeApiError(kubeStatus(422, 'Invalid', 'testing value failed'));
        break;
      case 'copy':
        add(path, getAt(pointer(String(op.from ?? ''))), false);
        break;
      case 'move':
        add(path, remove(pointer(String(op.from ?? ''))), false);
        break;
      default:
        throw badRequest(`unexpected kind of operation: ${String(op.op)}`);
    }
  }
  return doc;
}

// ---------------------------------------------------------------------------------------
// Type-specific strategies (defaults and validation a real API server applies)

interface Strategy {
  prepareForCreate?(obj: KubeObject, now: Date): void;
  validate?(obj: KubeObject): Cause[];
}

function selectorMatchesTemplate(obj: KubeObject): Cause[] {
  const spec = rec(obj.spec);
  const selector = rec(spec.selector);
  const matchLabels = rec(selector.matchLabels);
  const templateLabels = rec(rec(rec(spec.template).metadata).labels);
  if (Object.keys(matchLabels).length === 0 && !Array.isArray(selector.matchExpressions)) {
    return [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.selector' }];
  }
  for (const [k, v] of Object.entries(matchLabels)) {
    if (templateLabels[k] !== v) {
      return [
        {
          reason: 'FieldValueInvalid',
          message: `Invalid value: map[string]string{${Object.entries(templateLabels)
            .map(([a, b]) => `${JSON.stringify(a)}:${JSON.stringify(b)}`)
            .join(', ')}}: \`selector\` does not match template \`labels\``,
          field: 'spec.template.metadata.labels',
        },
      ];
    }
  }
  const containers = rec(rec(spec.template).spec).containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    return [
      { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers' },
    ];
  }
  return [];
}

const STRATEGIES: Record<string, Strategy> = {
  namespaces: {
    prepareForCreate(obj) {
      obj.metadata.labels = {
        ...obj.metadata.labels,
        'kubernetes.io/metadata.name': obj.metadata.name ?? '',
      };
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
    },
  },
  'deployments.apps': {
    prepareForCreate(obj) {
      const spec = rec(obj.spec);
      obj.spec = {
        replicas: 1,
        revisionHistoryLimit: 10,
        progressDeadlineSeconds: 600,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
        ...spec,
      };
    },
    validate: selectorMatchesTemplate,
  },
  'statefulsets.apps': {
    prepareForCreate(obj) {
      const spec = rec(obj.spec);
      obj.spec = {
        replicas: 1,
        podManagementPolicy: 'OrderedReady',
        updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0 } },
        revisionHistoryLimit: 10,
        ...spec,
      };
    },
    validate: selectorMatchesTemplate,
  },
  'customresourcedefinitions.apiextensions.k8s.io': {
    prepareForCreate(obj, now) {
      const spec = rec(obj.spec);
      const names = rec(spec.names);
      const versions = Array.isArray(spec.versions) ? spec.versions.map(rec) : [];
      const at = kubeTime(now);
      obj.status = {
        conditions: [
          {
            type: 'NamesAccepted',
            status: 'True',
            lastTransitionTime: at,
            reason: 'NoConflicts',
            message: 'no conflicts found',
          },
          {
            type: 'Established',
            status: 'True',
            lastTransitionTime: at,
            reason: 'InitialNamesAccepted',
            message: 'the initial names have been accepted',
          },
        ],
        acceptedNames: {
          plural: names.plural,
          singular: names.singular ?? String(names.kind ?? '').toLowerCase(),
          ...(names.shortNames ? { shortNames: names.shortNames } : {}),
          kind: names.kind,
          listKind: names.listKind ?? `${String(names.kind)}List`,
          ...(names.categories ? { categories: names.categories } : {}),
        },
        storedVersions: versions.filter((v) => v.storage === true).map((v) => v.name),
      };
    },
    validate(obj) {
      const causes: Cause[] = [];
      const spec = rec(obj.spec);
      const names = rec(spec.names);
      if (typeof spec.group !== 'string' || !spec.group.includes('.')) {
        causes.push({
          reason: 'FieldValueInvalid',
          message: 'Invalid value: should be a domain with at least one dot',
          field: 'spec.group',
        });
      }
      if (typeof names.plural !== 'string' || typeof names.kind !== 'string') {
        causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.names' });
      } else if (obj.metadata.name !== `${names.plural}.${String(spec.group)}`) {
        causes.push({
          reason: 'FieldValueInvalid',
          message: `Invalid value: ${JSON.stringify(obj.metadata.name)}: must be spec.names.plural+"."+spec.group`,
          field: 'metadata.name',
        });
      }
      if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
        causes.push({
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: ${JSON.stringify(spec.scope)}: supported values: "Cluster", "Namespaced"`,
          field: 'spec.scope',
        });
      }
      const versions = Array.isArray(spec.versions) ? spec.versions.map(rec) : [];
      if (versions.length === 0) {
        causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.versions' });
      } else if (versions.filter((v) => v.storage === true).length !== 1) {
        causes.push({
          reason: 'FieldValueInvalid',
          message: 'Invalid value: must have exactly one version marked as storage version',
          field: 'spec.versions',
        });
      }
      return causes;
    },
  },
};

function strategyKey(rt: ResourceType): string {
  return qualifiedResource(rt);
}

// ---------------------------------------------------------------------------------------
// The store

/** The objects of one cluster, with the semantics of a real API server. */
export class KubeStore {
  readonly timers: Timers;
  /** How long a deleted namespace stays Terminating (0: removed at once). */
  namespaceTerminationMs: number;
  private rv = 1000;
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private readonly listeners = new Set<(event: StoreEvent) => void>();
  private crdTypes: ResourceType[] | undefined;

  constructor(options: { timers: Timers; namespaceTerminationMs?: number }) {
    this.timers = options.timers;
    this.namespaceTerminationMs = options.namespaceTerminationMs ?? 0;
  }

  /** Subscribes to changes; returns the unsubscribe function. Listeners run synchronously: schedule work with `timers`. */
  on(listener: (event: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every served resource: the built-ins and those of established CRDs. */
  resources(): ResourceType[] {
    return [...BUILTIN_RESOURCES, ...this.customResources()];
  }

  private customResources(): ResourceType[] {
    if (this.crdTypes) return this.crdTypes;
    const types: ResourceType[] = [];
    const crds = this.data.get('customresourcedefinitions.apiextensions.k8s.io');
    for (const crd of crds?.values() ?? []) {
      if (crd.metadata.deletionTimestamp) continue;
      const spec = rec(crd.spec);
      const names = rec(spec.names);
      const versions = Array.isArray(spec.versions) ? spec.versions.map(rec) : [];
      for (const v of versions) {
        if (v.served !== true) continue;
        const kind = String(names.kind);
        types.push({
          group: String(spec.group),
          version: String(v.name),
          kind,
          listKind: typeof names.listKind === 'string' ? names.listKind : `${kind}List`,
          plural: String(names.plural),
          singular: typeof names.singular === 'string' ? names.singular : kind.toLowerCase(),
          namespaced: spec.scope === 'Namespaced',
          verbs: CR_VERBS,
          ...(Array.isArray(names.shortNames) ? { shortNames: names.shortNames as string[] } : {}),
          ...(Array.isArray(names.categories) ? { categories: names.categories as string[] } : {}),
          statusSubresource: isRecord(rec(v.subresources).status),
          generation: true,
          custom: true,
        });
      }
    }
    this.crdTypes = types;
    return types;
  }

  /** Groups and their served versions, built-ins first (as `/apis` lists them). */
  groups(): { name: string; versions: string[] }[] {
    const byGroup = new Map<string, string[]>();
    for (const rt of this.resources()) {
      if (!rt.group) continue;
      const versions = byGroup.get(rt.group) ?? [];
      if (!versions.includes(rt.version)) versions.push(rt.version);
      byGroup.set(rt.group, versions);
    }
    const custom = [...byGroup.keys()].filter((g) => !BUILTIN_GROUPS.includes(g)).sort();
    return [...BUILTIN_GROUPS.filter((g) => byGroup.has(g)), ...custom].map((name) => ({
      name,
      versions: byGroup.get(name) ?? [],
    }));
  }

  resourceByPath(group: string, version: string, plural: string): ResourceType | undefined {
    return this.resources().find((r) => r.group === group && r.version === version && r.plural === plural);
  }

  resourceFor(apiVersion: string, kind: string): ResourceType | undefined {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    return this.resources().find((r) => r.group === group && r.version === version && r.kind === kind);
  }

  /** Like `resourceFor`, throwing when the type is not served. */
  mustResource(apiVersion: string, kind: string): ResourceType {
    const rt = this.resourceFor(apiVersion, kind);
    if (!rt) throw new Error(`${apiVersion} ${kind} is not served by this cluster`);
    return rt;
  }

  private bucket(rt: ResourceType): Map<string, KubeObject> {
    const key = qualifiedResource(rt);
    let map = this.data.get(key);
    if (!map) {
      map = new Map();
      this.data.set(key, map);
    }
    return map;
  }

  private emit(event: StoreEvent): void {
    if (
      event.resource.plural === 'customresourcedefinitions' &&
      event.resource.group === 'apiextensions.k8s.io'
    ) {
      this.crdTypes = undefined;
    }
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch {
        // a broken listener must not break the API
      }
    }
  }

  private nextVersion(): string {
    this.rv += 1;
    return String(this.rv);
  }

  currentVersion(): string {
    return String(this.rv);
  }

  private withType(rt: ResourceType, obj: KubeObject): KubeObject {
    return { ...obj, apiVersion: groupVersion(rt), kind: rt.kind };
  }

  get(rt: ResourceType, namespace: string | undefined, name: string): KubeObject | undefined {
    const obj = this.bucket(rt).get(`${rt.namespaced ? (namespace ?? '') : ''}/${name}`);
    return obj ? this.withType(rt, clone(obj)) : undefined;
  }

  mustGet(rt: ResourceType, namespace: string | undefined, name: string): KubeObject {
    const obj = this.get(rt, namespace, name);
    if (!obj) throw notFound(rt, name);
    return obj;
  }

  /** Objects sorted by namespace and name (etcd key order). */
  list(rt: ResourceType, options: ListOptions = {}): ListResult {
    const reqs = options.labelSelector ? parseLabelSelector(options.labelSelector) : [];
    const fields = fieldMatcher(rt, options.fieldSelector);
    const keys = [...this.bucket(rt).keys()].sort();
    let start = 0;
    if (options.continue) {
      try {
        const token = JSON.parse(Buffer.from(options.continue, 'base64url').toString('utf8')) as {
          after?: string;
        };
        if (typeof token.after !== 'string') throw new Error('bad token');
        start = keys.findIndex((k) => k > token.after!);
        if (start < 0) start = keys.length;
      } catch {
        throw badRequest(
          'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
        );
      }
    }
    const matching: { key: string; obj: KubeObject }[] = [];
    for (const key of keys.slice(start)) {
      const obj = this.bucket(rt).get(key)!;
      if (rt.namespaced && options.namespace && obj.metadata.namespace !== options.namespace) continue;
      if (!matchesLabels(obj.metadata.labels, reqs) || !fields(obj)) continue;
      matching.push({ key, obj });
    }
    const limit = options.limit && options.limit > 0 ? options.limit : undefined;
    const page = limit ? matching.slice(0, limit) : matching;
    const result: ListResult = {
      items: page.map((m) => this.withType(rt, clone(m.obj))),
      resourceVersion: this.currentVersion(),
    };
    if (limit && matching.length > limit) {
      result.continue = Buffer.from(
        JSON.stringify({ after: page[page.length - 1]!.key, rv: this.rv }),
      ).toString('base64url');
      result.remainingItemCount = matching.length - limit;
    }
    return result;
  }

  /** Creates an object (POST semantics). Throws `KubeApiError` with the Status a real server sends. */
  create(rt: ResourceType, input: unknown, options: CreateOptions = {}): KubeObject {
    if (!isRecord(input)) {
      throw badRequest(
        'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf',
      );
    }
    const gv = groupVersion(rt);
    if (input.apiVersion !== undefined && input.apiVersion !== gv) {
      throw badRequest(
        `the API version in the data (${String(input.apiVersion)}) does not match the expected API version (${gv})`,
      );
    }
    if (input.kind !== undefined && input.kind !== rt.kind) {
      throw badRequest(
        `the kind in the data (${String(input.kind)}) does not match the expected kind (${rt.kind})`,
      );
    }
    const body = clone(input);
    const meta: KubeMeta = isRecord(body.metadata) ? (body.metadata as KubeMeta) : {};
    const obj: KubeObject = { ...body, apiVersion: gv, kind: rt.kind, metadata: meta };
    const now = this.timers.now();
    if (rt.namespaced) {
      const ns = options.namespace ?? meta.namespace;
      if (options.namespace && meta.namespace && meta.namespace !== options.namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      if (!ns)
        throw new KubeApiError(
          kubeStatus(404, 'NotFound', 'the server could not find the requested resource'),
        );
      meta.namespace = ns;
    } else delete meta.namespace;
    if (!meta.name && meta.generateName) {
      let suffix = '';
      for (let i = 0; i < 5; i++) suffix += GENERATE_CHARS[Math.floor(Math.random() * GENERATE_CHARS.length)];
      meta.name = `${meta.generateName}${suffix}`;
    }
    const name = meta.name ?? '';
    const causes: Cause[] = [];
    if (!name) {
      causes.push({
        reason: 'FieldValueRequired',
        message: 'Required value: name or generateName is required',
        field: 'metadata.name',
      });
    } else {
      const label = rt.plural === 'namespaces' || rt.plural === 'statefulsets';
      const ok = label
        ? name.length <= 63 && DNS1123_LABEL.test(name)
        : name.length <= 253 && DNS1123_SUBDOMAIN.test(name);
      if (!ok) {
        causes.push({
          reason: 'FieldValueInvalid',
          message: label
            ? `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`
            : `Invalid value: ${JSON.stringify(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
          field: 'metadata.name',
        });
      }
    }
    causes.push(...validateLabels(meta.labels, 'metadata.labels'));
    if (causes.length > 0) throw invalid(rt, name, causes);

    if (rt.namespaced) {
      const nsType = BUILTIN_RESOURCES.find((r) => r.plural === 'namespaces')!;
      const ns = this.bucket(nsType).get(`/${meta.namespace}`);
      if (!ns) throw notFound(nsType, meta.namespace ?? '');
      if (ns.metadata.deletionTimestamp) {
        const message = `${rt.kind === 'Namespace' ? '' : `${qualifiedResource(rt)} ${JSON.stringify(name)} is forbidden: `}unable to create new content in namespace ${meta.namespace} because it is being terminated`;
        throw new KubeApiError(
          kubeStatusWithDetails(403, 'Forbidden', message, {
            name,
            ...(rt.group ? { group: rt.group } : {}),
            kind: rt.plural,
            causes: [
              {
                reason: 'NamespaceTerminating',
                message: `namespace ${meta.namespace} is being terminated`,
                field: 'metadata.namespace',
              },
            ],
          }),
        );
      }
    }
    const key = `${rt.namespaced ? meta.namespace : ''}/${name}`;
    if (this.bucket(rt).has(key)) {
      throw new KubeApiError(
        kubeStatusWithDetails(
          409,
          'AlreadyExists',
          `${qualifiedResource(rt)} ${JSON.stringify(name)} already exists`,
          {
            name,
            ...(rt.group ? { group: rt.group } : {}),
            kind: rt.plural,
          },
        ),
      );
    }
    const strategy = STRATEGIES[strategyKey(rt)];
    const givenStatus = obj.status;
    if (rt.statusSubresource) delete obj.status;
    strategy?.prepareForCreate?.(obj, now);
    if (options.keepStatus && givenStatus !== undefined) obj.status = givenStatus;
    const typeCauses = strategy?.validate?.(obj) ?? [];
    if (typeCauses.length > 0) throw invalid(rt, name, typeCauses);

    for (const k of [
      'resourceVersion',
      'deletionTimestamp',
      'deletionGracePeriodSeconds',
      'managedFields',
      'selfLink',
    ]) {
      delete meta[k];
    }
    meta.uid = randomUUID();
    meta.creationTimestamp = kubeTime(now);
    if (rt.generation) meta.generation = 1;
    else delete meta.generation;
    if (options.dryRun) return ordered(obj);
    meta.resourceVersion = this.nextVersion();
    const stored = ordered(obj);
    this.bucket(rt).set(key, stored);
    this.emit({
      type: 'ADDED',
      resource: rt,
      object: clone(stored),
      viaApi: options.viaApi ?? false,
      ...(options.keepStatus ? { keepStatus: true } : {}),
      ...(options.readyAfterMs !== undefined ? { readyAfterMs: options.readyAfterMs } : {}),
    });
    return clone(stored);
  }

  /**
   * Writes a new version of an existing object, with the rules of an update: identity
   * fields are kept, `resourceVersion` (when given) must match, status follows the
   * subresource rules, generation counts spec changes, a no-op is not a new version.
   */
  private commit(
    rt: ResourceType,
    old: KubeObject,
    next: KubeObject,
    options: { subresource?: 'status'; dryRun?: boolean; viaApi?: boolean; internal?: boolean },
  ): KubeObject {
    const name = old.metadata.name ?? '';
    if (next.metadata.resourceVersion && next.metadata.resourceVersion !== old.metadata.resourceVersion) {
      throw conflict(rt, name);
    }
    let candidate: KubeObject;
    if (options.subresource === 'status') {
      candidate = { ...clone(old), status: next.status };
    } else {
      candidate = { ...next, apiVersion: old.apiVersion, kind: old.kind };
      if (rt.statusSubresource && !options.internal) {
        if (old.status === undefined) delete candidate.status;
        else candidate.status = clone(old.status);
      }
    }
    const meta: KubeMeta = { ...rec(candidate.metadata) };
    for (const k of ['name', 'namespace', 'uid', 'creationTimestamp', 'deletionTimestamp', 'generation']) {
      if (old.metadata[k] === undefined) delete meta[k];
      else meta[k] = old.metadata[k];
    }
    meta.resourceVersion = old.metadata.resourceVersion;
    candidate.metadata = meta;
    const causes = validateLabels(meta.labels, 'metadata.labels');
    if (causes.length > 0) throw invalid(rt, name, causes);
    if (!options.internal) {
      const typeCauses = STRATEGIES[strategyKey(rt)]?.validate?.(candidate) ?? [];
      if (typeCauses.length > 0) throw invalid(rt, name, typeCauses);
    }
    const body = (o: KubeObject) => {
      const { metadata: _m, status: _s, ...rest } = o;
      return stable(rt.statusSubresource ? rest : { ...rest, status: o.status });
    };
    const specChanged = rt.generation && body(old) !== body(candidate);
    if (specChanged) meta.generation = (old.metadata.generation ?? 1) + 1;
    const result = ordered(candidate);
    if (stable(result) === stable(old)) return old;
    if (options.dryRun) return result;
    result.metadata.resourceVersion = this.nextVersion();
    this.bucket(rt).set(`${rt.namespaced ? old.metadata.namespace : ''}/${name}`, result);
    this.emit({
      type: 'MODIFIED',
      resource: rt,
      object: clone(result),
      viaApi: options.viaApi ?? false,
      specChanged: Boolean(specChanged),
    });
    return clone(result);
  }

  /** PUT: replaces the object (or its status). */
  replace(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    input: unknown,
    options: { subresource?: 'status'; dryRun?: boolean; viaApi?: boolean } = {},
  ): KubeObject {
    if (!isRecord(input)) throw badRequest('the body of the request was in an unknown format');
    const old = this.mustGet(rt, namespace, name);
    const meta = rec(input.metadata);
    if (meta.name !== undefined && meta.name !== name) {
      throw badRequest(
        `the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`,
      );
    }
    if (rt.namespaced && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    return this.commit(rt, old, { ...clone(input), metadata: { ...meta } } as KubeObject, options);
  }

  /** PATCH with a merge patch, a strategic merge patch (applied as a merge patch) or a JSON patch. */
  patch(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    contentType: string,
    options: { subresource?: 'status'; dryRun?: boolean; viaApi?: boolean } = {},
  ): KubeObject {
    const old = this.mustGet(rt, namespace, name);
    const type = contentType.split(';')[0]!.trim();
    let next: unknown;
    if (type === 'application/json-patch+json') next = jsonPatch(old, patch);
    else if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
      if (!isRecord(patch)) throw badRequest('the body of the request was in an unknown format');
      if (type === 'application/strategic-merge-patch+json' && rt.custom) {
        throw new KubeApiError(
          kubeStatus(
            415,
            'UnsupportedMediaType',
            'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
          ),
        );
      }
      next = mergePatch(old, patch);
    } else {
      throw new KubeApiError(
        kubeStatus(
          415,
          'UnsupportedMediaType',
          `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${rt.custom ? '' : ', application/strategic-merge-patch+json'}`,
        ),
      );
    }
    if (!isRecord(next)) throw badRequest('the patch does not produce an object');
    const meta = rec(next.metadata);
    // A patch that does not name a resourceVersion is unconditional.
    const patchMeta = rec(rec(patch).metadata);
    if (patchMeta.resourceVersion === undefined) meta.resourceVersion = undefined;
    return this.commit(rt, old, { ...next, metadata: meta } as KubeObject, options);
  }

  /** Internal update for controllers and tests: `mutate` edits a copy (status included). */
  update(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    mutate: (obj: KubeObject) => void,
  ): KubeObject | undefined {
    const old = this.get(rt, namespace, name);
    if (!old) return undefined;
    const next = clone(old);
    mutate(next);
    next.metadata.resourceVersion = undefined;
    return this.commit(rt, old, next, { internal: true });
  }

  /** DELETE: the answer body a real server sends (the object for namespaces and custom resources, else a Status). */
  delete(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    options: {
      dryRun?: boolean;
      viaApi?: boolean;
      preconditions?: { uid?: string; resourceVersion?: string };
    } = {},
  ): unknown {
    const old = this.mustGet(rt, namespace, name);
    const pre = options.preconditions;
    if (
      (pre?.uid && pre.uid !== old.metadata.uid) ||
      (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion)
    ) {
      throw conflict(rt, name);
    }
    const key = `${rt.namespaced ? old.metadata.namespace : ''}/${name}`;
    if (rt.plural === 'namespaces' && !rt.group) {
      const terminating: KubeObject = {
        ...old,
        metadata: {
          ...old.metadata,
          deletionTimestamp: old.metadata.deletionTimestamp ?? kubeTime(this.timers.now()),
        },
        status: { phase: 'Terminating' },
      };
      if (options.dryRun) return terminating;
      if (!old.metadata.deletionTimestamp) {
        this.purgeNamespace(name);
        if (this.namespaceTerminationMs > 0) {
          terminating.metadata.resourceVersion = this.nextVersion();
          this.bucket(rt).set(key, ordered(terminating));
          this.emit({
            type: 'MODIFIED',
            resource: rt,
            object: clone(terminating),
            viaApi: options.viaApi ?? false,
          });
          this.timers.after(this.namespaceTerminationMs, () => this.finalizeNamespace(rt, key));
        } else this.finalizeNamespace(rt, key);
      }
      return ordered(terminating);
    }
    if (options.dryRun) return rt.custom ? old : successStatus(rt, old);
    const isCrd = rt.plural === 'customresourcedefinitions' && rt.group === 'apiextensions.k8s.io';
    const servedByCrd = isCrd ? this.customResources().filter((t) => `${t.plural}.${t.group}` === name) : [];
    this.bucket(rt).delete(key);
    if (isCrd) this.purgeCrd(name, servedByCrd);
    this.emit({ type: 'DELETED', resource: rt, object: clone(old), viaApi: options.viaApi ?? false });
    return rt.custom ? old : successStatus(rt, old);
  }

  /** DELETE on a collection. */
  deleteCollection(
    rt: ResourceType,
    options: ListOptions & { dryRun?: boolean; viaApi?: boolean } = {},
  ): KubeObject[] {
    const { items } = this.list(rt, { ...options, limit: 0 });
    for (const item of items) {
      if (!options.dryRun)
        this.delete(rt, item.metadata.namespace, item.metadata.name ?? '', {
          viaApi: options.viaApi ?? false,
        });
    }
    return items;
  }

  private finalizeNamespace(rt: ResourceType, key: string): void {
    const ns = this.bucket(rt).get(key);
    if (!ns) return;
    this.purgeNamespace(ns.metadata.name ?? '');
    this.bucket(rt).delete(key);
    this.emit({ type: 'DELETED', resource: rt, object: clone(ns), viaApi: false });
  }

  private purgeNamespace(namespace: string): void {
    for (const t of this.resources()) {
      if (!t.namespaced) continue;
      const bucket = this.bucket(t);
      for (const [key, obj] of [...bucket]) {
        if (obj.metadata.namespace !== namespace) continue;
        bucket.delete(key);
        this.emit({ type: 'DELETED', resource: t, object: this.withType(t, clone(obj)), viaApi: false });
      }
    }
  }

  /** A deleted CRD takes its custom resources with it. */
  private purgeCrd(name: string, types: ResourceType[]): void {
    this.crdTypes = undefined;
    const bucket = this.data.get(name);
    this.data.delete(name);
    const rt = types[0];
    if (!bucket || !rt) return;
    for (const obj of bucket.values())
      this.emit({ type: 'DELETED', resource: rt, object: clone(obj), viaApi: false });
  }
}

function successStatus(rt: ResourceType, obj: KubeObject): unknown {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: {
      name: obj.metadata.name,
      ...(rt.group ? { group: rt.group } : {}),
      kind: rt.plural,
      uid: obj.metadata.uid,
    },
  };
}

// ---------------------------------------------------------------------------------------
// Discovery and object routes

function apiResource(rt: ResourceType): Record<string, unknown> {
  return {
    name: rt.plural,
    singularName: rt.singular,
    namespaced: rt.namespaced,
    kind: rt.kind,
    verbs: rt.verbs,
    ...(rt.shortNames ? { shortNames: rt.shortNames } : {}),
    ...(rt.categories ? { categories: rt.categories } : {}),
    storageVersionHash: createHash('sha256')
      .update(`${groupVersion(rt)}/${rt.kind}`)
      .digest()
      .subarray(0, 8)
      .toString('base64'),
  };
}

/** An `APIResourceList` for one group/version, or undefined when nothing is served there. */
export function apiResourceList(
  store: KubeStore,
  group: string,
  version: string,
): Record<string, unknown> | undefined {
  const types = store.resources().filter((r) => r.group === group && r.version === version);
  if (types.length === 0) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const rt of [...types].sort((a, b) => a.plural.localeCompare(b.plural))) {
    resources.push(apiResource(rt));
    if (rt.statusSubresource) {
      resources.push({
        name: `${rt.plural}/status`,
        singularName: '',
        namespaced: rt.namespaced,
        kind: rt.kind,
        verbs: ['get', 'patch', 'update'],
      });
    }
  }
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: group ? `${group}/${version}` : version,
    resources,
  };
}

const NOT_FOUND_PATH = () => kubeStatus(404, 'NotFound', 'the server could not find the requested resource');

/** The discovery routes every API server has. */
export function coreRoutes(): KubeRoute[] {
  const groupDoc = (g: { name: string; versions: string[] }) => {
    const versions = g.versions.map((v) => ({ groupVersion: `${g.name}/${v}`, version: v }));
    return { name: g.name, versions, preferredVersion: versions[0] };
  };
  return [
    {
      method: 'GET',
      path: /^\/version$/,
      operation: 'GetVersion',
      handle: ({ state }) => ({ status: 200, body: versionInfo(state.gitVersion) }),
    },
    {
      method: 'GET',
      path: /^\/api$/,
      operation: 'GetAPIVersions',
      handle: ({ state }) => ({
        status: 200,
        body: {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: state.address }],
        },
      }),
    },
    {
      method: 'GET',
      path: /^\/apis$/,
      operation: 'GetAPIGroupList',
      handle: ({ state }) => ({
        status: 200,
        body: { kind: 'APIGroupList', apiVersion: 'v1', groups: state.store.groups().map(groupDoc) },
      }),
    },
    {
      method: 'GET',
      path: /^\/api\/(v1)$/,
      operation: 'discover:v1',
      handle: ({ state }) => {
        const doc = apiResourceList(state.store, '', 'v1');
        return doc ? { status: 200, body: doc } : NOT_FOUND_PATH();
      },
    },
    {
      method: 'GET',
      path: /^\/apis\/([^/]+)$/,
      operation: (m) => `discover:${m[1]}`,
      handle: ({ state, match }) => {
        const group = state.store.groups().find((g) => g.name === match[1]);
        return group
          ? { status: 200, body: { kind: 'APIGroup', apiVersion: 'v1', ...groupDoc(group) } }
          : NOT_FOUND_PATH();
      },
    },
    {
      method: 'GET',
      path: /^\/apis\/([^/]+)\/([^/]+)$/,
      operation: (m) => `discover:${m[1]}/${m[2]}`,
      handle: ({ state, match }) => {
        const doc = apiResourceList(state.store, match[1]!, match[2]!);
        return doc ? { status: 200, body: doc } : NOT_FOUND_PATH();
      },
    },
    {
      method: 'GET',
      path: /^\/(healthz|livez|readyz)$/,
      operation: 'GetHealth',
      handle: () => ({ status: 200, body: 'ok', headers: { 'content-type': 'text/plain; charset=utf-8' } }),
    },
  ];
}

interface ObjectPath {
  group: string;
  version: string;
  namespace?: string;
  resource: string;
  name?: string;
  subresource?: string;
}

const OBJECT_PATH = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/(.+)$/;

function parseObjectPath(match: RegExpExecArray): ObjectPath | undefined {
  const group = match[1] ? '' : (match[2] ?? '');
  const version = match[1] ?? match[3] ?? '';
  let parts: string[];
  try {
    parts = (match[4] ?? '').split('/').map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
  let namespace: string | undefined;
  // `namespaces/<ns>/<resource>...` is a namespaced request; `namespaces/<ns>[/status|/finalize]` is the Namespace itself.
  if (parts[0] === 'namespaces' && parts.length > 2 && parts[2] !== 'status' && parts[2] !== 'finalize') {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  if (parts.length > 3 || parts.some((p) => p === '')) return undefined;
  return {
    group,
    version,
    ...(namespace !== undefined ? { namespace } : {}),
    resource: parts[0]!,
    ...(parts[1] !== undefined ? { name: parts[1] } : {}),
    ...(parts[2] !== undefined ? { subresource: parts[2] } : {}),
  };
}

type Verb = 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

function verbOf(method: KubeRoute['method'], p: ObjectPath | undefined): Verb {
  const named = p?.name !== undefined;
  switch (method) {
    case 'GET':
      return named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
  }
}

function operationOf(method: KubeRoute['method'], match: RegExpExecArray): string {
  const p = parseObjectPath(match);
  if (!p) return 'Unknown';
  const gv = p.group ? `${p.group}/${p.version}` : p.version;
  return `${verbOf(method, p)}:${gv}/${p.resource}${p.subresource ? `/${p.subresource}` : ''}`;
}

function dryRunOf(url: URL): boolean {
  const values = url.searchParams.getAll('dryRun');
  if (values.length === 0) return false;
  for (const v of values) {
    if (v !== 'All') throw badRequest(`Invalid dryRun value: ${JSON.stringify(v)}; supported values: "All"`);
  }
  return true;
}

function handleObject(method: KubeRoute['method'], ctx: KubeRouteContext): KubeAnswer {
  const p = parseObjectPath(ctx.match);
  if (!p) return NOT_FOUND_PATH();
  const store = ctx.state.store;
  const rt = store.resourceByPath(p.group, p.version, p.resource);
  if (!rt) return NOT_FOUND_PATH();
  if (p.subresource && !(p.subresource === 'status' && rt.statusSubresource)) return NOT_FOUND_PATH();
  if (!rt.namespaced && p.namespace !== undefined) return NOT_FOUND_PATH();
  if (rt.namespaced && p.namespace === undefined && p.name !== undefined) return NOT_FOUND_PATH();
  const verb = verbOf(method, p);
  const allowed =
    (verb === 'create' && p.name === undefined) ||
    ((verb === 'update' || verb === 'patch') && p.name !== undefined) ||
    (verb === 'get' && p.name !== undefined) ||
    (verb === 'delete' && !p.subresource) ||
    (!p.subresource && (verb === 'list' || verb === 'deletecollection'));
  if (!allowed || (!p.subresource && !rt.verbs.includes(verb))) {
    return kubeStatusWithDetails(
      405,
      'MethodNotAllowed',
      `the server does not allow this method on the requested resource`,
      {},
    );
  }
  if (rt.namespaced && verb === 'create' && p.namespace === undefined) return NOT_FOUND_PATH();
  const sub = p.subresource === 'status' ? ('status' as const) : undefined;
  const q = ctx.url.searchParams;
  try {
    switch (verb) {
      case 'get':
        return { status: 200, body: store.mustGet(rt, p.namespace, p.name!) };
      case 'list': {
        const limit = q.get('limit');
        const result = store.list(rt, {
          ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
          ...(q.get('labelSelector') ? { labelSelector: q.get('labelSelector')! } : {}),
          ...(q.get('fieldSelector') ? { fieldSelector: q.get('fieldSelector')! } : {}),
          ...(limit ? { limit: Number(limit) } : {}),
          ...(q.get('continue') ? { continue: q.get('continue')! } : {}),
        });
        return {
          status: 200,
          body: {
            apiVersion: groupVersion(rt),
            kind: rt.listKind,
            metadata: {
              resourceVersion: result.resourceVersion,
              ...(result.continue
                ? { continue: result.continue, remainingItemCount: result.remainingItemCount }
                : {}),
            },
            // A real server leaves apiVersion/kind out of built-in list items; custom resources keep them.
            items: result.items.map((item) => {
              if (rt.custom) return item;
              const { apiVersion: _a, kind: _k, ...rest } = item;
              return rest;
            }),
          },
        };
      }
      case 'create': {
        const dryRun = dryRunOf(ctx.url);
        const created = store.create(rt, ctx.body, {
          ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
          dryRun,
          viaApi: true,
        });
        return { status: 201, body: created };
      }
      case 'update':
        return {
          status: 200,
          body: store.replace(rt, p.namespace, p.name!, ctx.body, {
            ...(sub ? { subresource: sub } : {}),
            dryRun: dryRunOf(ctx.url),
            viaApi: true,
          }),
        };
      case 'patch':
        return {
          status: 200,
          body: store.patch(rt, p.namespace, p.name!, ctx.body, String(ctx.headers['content-type'] ?? ''), {
            ...(sub ? { subresource: sub } : {}),
            dryRun: dryRunOf(ctx.url),
            viaApi: true,
          }),
        };
      case 'delete': {
        const pre = rec(rec(ctx.body).preconditions);
        return {
          status: 200,
          body: store.delete(rt, p.namespace, p.name!, {
            dryRun: dryRunOf(ctx.url),
            viaApi: true,
            preconditions: {
              ...(typeof pre.uid === 'string' ? { uid: pre.uid } : {}),
              ...(typeof pre.resourceVersion === 'string' ? { resourceVersion: pre.resourceVersion } : {}),
            },
          }),
        };
      }
      case 'deletecollection': {
        const items = store.deleteCollection(rt, {
          ...(p.namespace !== undefined ? { namespace: p.namespace } : {}),
          ...(q.get('labelSelector') ? { labelSelector: q.get('labelSelector')! } : {}),
          ...(q.get('fieldSelector') ? { fieldSelector: q.get('fieldSelector')! } : {}),
          dryRun: dryRunOf(ctx.url),
          viaApi: true,
        });
        return {
          status: 200,
          body: {
            apiVersion: groupVersion(rt),
            kind: rt.listKind,
            metadata: { resourceVersion: store.currentVersion() },
            items,
          },
        };
      }
    }
  } catch (error) {
    if (error instanceof KubeApiError) return error.answer;
    throw error;
  }
  return NOT_FOUND_PATH();
}

/** The generic object API: `/api/v1/...` and `/apis/<group>/<version>/...` for every served resource. */
export function objectRoutes(): KubeRoute[] {
  const methods: KubeRoute['method'][] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
  return methods.map((method) => ({
    method,
    path: OBJECT_PATH,
    operation: (m: RegExpExecArray) => operationOf(method, m),
    handle: (ctx: KubeRouteContext) => handleObject(method, ctx),
  }));
}

// ---------------------------------------------------------------------------------------
// Workload readiness (the Deployment and StatefulSet controllers, reduced to status)

function deploymentStatus(obj: KubeObject, ready: boolean, at: string): Record<string, unknown> {
  const replicas = Number(rec(obj.spec).replicas ?? 1);
  const generation = obj.metadata.generation ?? 1;
  const rs = `${obj.metadata.name}-${shortHash(`${obj.metadata.uid}/${generation}`)}`;
  const n = (v: number) => (v > 0 ? v : undefined);
  const available = ready || replicas === 0;
  return {
    observedGeneration: generation,
    replicas: n(replicas),
    updatedReplicas: n(replicas),
    readyReplicas: ready ? n(replicas) : undefined,
    availableReplicas: ready ? n(replicas) : undefined,
    unavailableReplicas: ready ? undefined : n(replicas),
    conditions: [
      available
        ? {
            type: 'Available',
            status: 'True',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'MinimumReplicasAvailable',
            message: 'Deployment has minimum availability.',
          }
        : {
            type: 'Available',
            status: 'False',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'MinimumReplicasUnavailable',
            message: 'Deployment does not have minimum availability.',
          },
      ready
        ? {
            type: 'Progressing',
            status: 'True',
            lastUpdateTime: at,
            lastTransitionTime: at,
            reason: 'NewReplicaSetAvailable',
            message: `ReplicaSet "${rs}" has successfully progressed.`,
          }
        : {
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

function statefulSetStatus(obj: KubeObject, ready: boolean): Record<string, unknown> {
  const replicas = Number(rec(obj.spec).replicas ?? 1);
  const generation = obj.metadata.generation ?? 1;
  const revision = `${obj.metadata.name}-${shortHash(`${obj.metadata.uid}/${generation}`)}`;
  const n = (v: number) => (v > 0 ? v : undefined);
  return {
    observedGeneration: generation,
    replicas,
    readyReplicas: ready ? n(replicas) : undefined,
    currentReplicas: ready ? n(replicas) : undefined,
    updatedReplicas: ready ? n(replicas) : undefined,
    availableReplicas: ready ? replicas : 0,
    currentRevision: revision,
    updateRevision: revision,
    collisionCount: 0,
  };
}

/** Status of a Deployment or StatefulSet that is (or is not yet) ready. */
export function workloadStatus(obj: KubeObject, ready: boolean, now: Date): Record<string, unknown> {
  const status =
    obj.kind === 'StatefulSet' ? statefulSetStatus(obj, ready) : deploymentStatus(obj, ready, kubeTime(now));
  return JSON.parse(JSON.stringify(status)) as Record<string, unknown>;
}

function watchWorkloads(store: KubeStore, defaultReadyMs: () => number): void {
  store.on((event) => {
    const rt = event.resource;
    if (rt.group !== 'apps' || (rt.plural !== 'deployments' && rt.plural !== 'statefulsets')) return;
    if (event.type === 'DELETED' || (event.type === 'ADDED' && event.keepStatus)) return;
    if (event.type === 'MODIFIED' && !event.specChanged) return;
    const { namespace, name, uid, generation } = event.object.metadata;
    const delay = event.readyAfterMs ?? defaultReadyMs();
    const step = (ready: boolean) => () =>
      store.update(rt, namespace, name ?? '', (obj) => {
        if (obj.metadata.uid !== uid || obj.metadata.generation !== generation) return;
        obj.status = workloadStatus(obj, ready, store.timers.now());
        // The controller's status write, as the API server records it (a StatefulSet's only time evidence).
        obj.metadata.managedFields = [
          ...((obj.metadata.managedFields as { subresource?: string }[] | undefined) ?? []).filter(
            (f) => f.subresource !== 'status',
          ),
          {
            manager: 'kube-controller-manager',
            operation: 'Update',
            apiVersion: 'apps/v1',
            time: kubeTime(store.timers.now()),
            fieldsType: 'FieldsV1',
            fieldsV1: { 'f:status': {} },
            subresource: 'status',
          },
        ];
      });
    store.timers.after(0, step(false));
    store.timers.after(delay, step(true));
  });
}

// ---------------------------------------------------------------------------------------
// Clusters

export interface SeedWorkloadsOptions {
  deployments?: number;
  statefulsets?: number;
  /** Labels of the namespace and of every workload. */
  labels?: Record<string, string>;
}

/** One fake cluster: its address, objects and the helpers tests and the sandbox use. */
export interface KubeCluster {
  readonly key: string;
  readonly name: string;
  /** The `server` of a kubeconfig cluster entry (`https://127.0.0.1:<port>/clusters/<key>` on a fleet fake). */
  readonly server: string;
  readonly state: KubeFakeState;
  readonly store: KubeStore;
  /** The Velero simulator, when installed. */
  readonly velero: VeleroSim | undefined;
  setVersion(gitVersion: string): void;
  setToken(token: KubeToken): void;
  installVelero(install: VeleroInstall): VeleroSim;
  /** Copies of the objects of a type (in one namespace), sorted by namespace and name. */
  objects(apiVersion: string, kind: string, namespace?: string): KubeObject[];
  object(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject | undefined;
  /** Creates an object, or replaces the one of that name, keeping the given status (no request, no log). */
  apply(object: KubeObject): KubeObject;
  /** Deletes an object as the API would (a namespace takes its objects with it); false when absent. */
  remove(apiVersion: string, kind: string, name: string, namespace?: string): boolean;
  /** Creates a namespace (if missing) with ready Deployments and StatefulSets. */
  seedWorkloads(namespace: string, options: SeedWorkloadsOptions): KubeObject[];
}

export interface KubeClusterOptions {
  key: string;
  /** Scope of log entries and fault rules (default: the key). */
  name?: string;
  token?: KubeToken;
  gitVersion?: string;
  velero?: VeleroInstall | false;
  workloadReadyDelayMs?: number;
  namespaceTerminationMs?: number;
}

interface ClusterRuntime {
  state: KubeFakeState;
  token: KubeToken;
  handle: KubeCluster;
}

const DEPLOYMENT_NAMES = ['api', 'web', 'worker', 'gateway', 'scheduler', 'notifier'];
const DEPLOYMENT_IMAGES = [
  'nginx:1.27.3',
  'nginx:1.27.3',
  'busybox:1.37',
  'envoyproxy/envoy:v1.32.3',
  'busybox:1.37',
  'busybox:1.37',
];
const STATEFUL_NAMES = ['postgres', 'redis', 'kafka', 'zookeeper', 'etcd'];
const STATEFUL_IMAGES = [
  'postgres:16.6',
  'redis:7.4.2',
  'apache/kafka:3.9.0',
  'zookeeper:3.9.3',
  'quay.io/coreos/etcd:v3.5.17',
];

function seedName(names: string[], i: number): string {
  const base = names[i % names.length]!;
  return i < names.length ? base : `${base}-${Math.floor(i / names.length)}`;
}

function makeCluster(
  options: KubeClusterOptions & { server: string; address: () => string },
  shared: {
    timers: Timers;
    world: VeleroWorld;
    writeBackupObjects: WriteBackupObjects | undefined;
  },
): ClusterRuntime {
  const store = new KubeStore({
    timers: shared.timers,
    ...(options.namespaceTerminationMs !== undefined
      ? { namespaceTerminationMs: options.namespaceTerminationMs }
      : {}),
  });
  const name = options.name ?? options.key;
  const state: KubeFakeState = {
    name,
    gitVersion: options.gitVersion ?? DEFAULT_VERSION,
    address: '',
    store,
  };
  Object.defineProperty(state, 'address', { get: options.address, enumerable: true });
  const runtime: ClusterRuntime = {
    state,
    token: options.token ?? DEFAULT_TOKEN,
    handle: undefined as never,
  };
  let velero: VeleroSim | undefined;
  const readyDelay = options.workloadReadyDelayMs ?? 0;
  watchWorkloads(store, () => readyDelay);

  const nsType = store.mustResource('v1', 'Namespace');
  for (const ns of ['default', 'kube-node-lease', 'kube-public', 'kube-system']) {
    store.create(nsType, { metadata: { name: ns } });
  }

  const handle: KubeCluster = {
    key: options.key,
    name,
    server: options.server,
    state,
    store,
    get velero() {
      return velero;
    },
    setVersion(gitVersion) {
      state.gitVersion = gitVersion;
    },
    setToken(token) {
      runtime.token = token;
    },
    installVelero(install) {
      if (velero) throw new Error(`Velero is already installed in cluster ${options.key}`);
      velero = installVelero(
        {
          cluster: name,
          store,
          timers: shared.timers,
          world: shared.world,
          gitVersion: () => state.gitVersion,
          ...(shared.writeBackupObjects ? { writeBackupObjects: shared.writeBackupObjects } : {}),
        },
        install,
      );
      return velero;
    },
    objects(apiVersion, kind, namespace) {
      const rt = store.resourceFor(apiVersion, kind);
      if (!rt) return [];
      return store.list(rt, namespace !== undefined ? { namespace } : {}).items;
    },
    object(apiVersion, kind, objectName, namespace) {
      const rt = store.resourceFor(apiVersion, kind);
      return rt ? store.get(rt, namespace, objectName) : undefined;
    },
    apply(object) {
      const rt = store.mustResource(object.apiVersion, object.kind);
      const existing = store.get(rt, object.metadata.namespace, object.metadata.name ?? '');
      if (!existing) {
        return store.create(rt, object, {
          ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
          keepStatus: true,
        });
      }
      return (
        store.update(rt, object.metadata.namespace, object.metadata.name ?? '', (obj) => {
          for (const k of Object.keys(obj)) if (k !== 'metadata') delete obj[k];
          Object.assign(obj, clone(object), { metadata: { ...obj.metadata, ...clone(object.metadata) } });
          obj.metadata.resourceVersion = undefined;
        }) ?? existing
      );
    },
    remove(apiVersion, kind, objectName, namespace) {
      const rt = store.resourceFor(apiVersion, kind);
      if (!rt || !store.get(rt, namespace, objectName)) return false;
      store.delete(rt, namespace, objectName);
      return true;
    },
    seedWorkloads(namespace, seed) {
      const labels = seed.labels ?? {};
      const out: KubeObject[] = [];
      const existing = store.get(nsType, undefined, namespace);
      if (existing) {
        if (Object.keys(labels).length > 0) {
          out.push(
            store.update(nsType, undefined, namespace, (ns) => {
              ns.metadata.labels = { ...ns.metadata.labels, ...labels };
            }) ?? existing,
          );
        }
      } else out.push(store.create(nsType, { metadata: { name: namespace, labels: { ...labels } } }));
      const now = shared.timers.now();
      const workload = (
        kind: 'Deployment' | 'StatefulSet',
        workloadName: string,
        image: string,
        replicas: number,
      ) => {
        const rt = store.mustResource('apps/v1', kind);
        const appLabels = { 'app.kubernetes.io/name': workloadName, 'app.kubernetes.io/part-of': namespace };
        const container = {
          name: workloadName,
          image,
          ports: [{ name: 'http', containerPort: kind === 'Deployment' ? 8080 : 5432, protocol: 'TCP' }],
          resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
          imagePullPolicy: 'IfNotPresent',
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
        };
        const spec: Record<string, unknown> = {
          replicas,
          selector: { matchLabels: appLabels },
          template: {
            metadata: { labels: { ...appLabels } },
            spec: {
              containers: [container],
              restartPolicy: 'Always',
              terminationGracePeriodSeconds: 30,
              dnsPolicy: 'ClusterFirst',
              schedulerName: 'default-scheduler',
              securityContext: {},
            },
          },
        };
        if (kind === 'StatefulSet') {
          spec.serviceName = workloadName;
          spec.volumeClaimTemplates = [
            {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              metadata: { name: 'data' },
              spec: {
                accessModes: ['ReadWriteOnce'],
                resources: { requests: { storage: '1Gi' } },
                volumeMode: 'Filesystem',
              },
            },
          ];
        }
        const draft: KubeObject = {
          apiVersion: 'apps/v1',
          kind,
          metadata: { name: workloadName, namespace, labels: { ...appLabels, ...labels } },
          spec,
        };
        const created = store.create(rt, draft, { namespace, keepStatus: true });
        return (
          store.update(rt, namespace, workloadName, (obj) => {
            obj.status = workloadStatus(obj, true, now);
          }) ?? created
        );
      };
      for (let i = 0; i < (seed.deployments ?? 0); i++) {
        out.push(
          workload(
            'Deployment',
            seedName(DEPLOYMENT_NAMES, i),
            DEPLOYMENT_IMAGES[i % DEPLOYMENT_IMAGES.length]!,
            2,
          ),
        );
      }
      for (let i = 0; i < (seed.statefulsets ?? 0); i++) {
        out.push(
          workload(
            'StatefulSet',
            seedName(STATEFUL_NAMES, i),
            STATEFUL_IMAGES[i % STATEFUL_IMAGES.length]!,
            1,
          ),
        );
      }
      return out;
    },
  };
  runtime.handle = handle;
  if (options.velero) handle.installVelero(options.velero);
  return runtime;
}

// ---------------------------------------------------------------------------------------
// HTTP

function faultAnswer(fault: Exclude<Fault, { kind: 'timeout' | 'malformed' }>, denied = ''): KubeAnswer {
  if (fault.kind === 'deny') return kubeStatus(403, 'Forbidden', denied);
  if (fault.kind === 'throttle') {
    const answer = kubeStatus(429, 'TooManyRequests', 'Too many requests, please try again later.');
    answer.headers = { 'retry-after': String(fault.retryAfterSeconds ?? 1) };
    return answer;
  }
  const reason = fault.status === 503 ? 'ServiceUnavailable' : 'InternalError';
  return kubeStatus(fault.status, reason, 'an error on the server has prevented the request from succeeding');
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (!text) return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch {
        resolve(text);
      }
    });
    req.on('error', () => resolve(undefined));
  });
}

function tokenAccepted(expected: KubeToken, authorization: string | undefined): boolean {
  const m = /^Bearer (.+)$/.exec(authorization ?? '');
  if (!m) return false;
  const presented = m[1]!;
  if (typeof expected === 'string') return presented === expected;
  try {
    return expected(presented);
  } catch {
    return false;
  }
}

interface Served {
  url: string;
  port: number;
  caFile: string;
  ca: string;
  stop(): Promise<void>;
}

/** Serves `resolve`d clusters over HTTPS on a free loopback port. */
async function serve(options: {
  certDir?: string;
  faults?: FaultInjector;
  log?: RequestLog;
  /** The cluster a path belongs to and the path inside it; `scope` names unknown clusters in the log. */
  resolve(pathname: string): { runtime?: ClusterRuntime; path: string; scope: string };
  onStop(): void;
}): Promise<Served> {
  const ownCertDir = options.certDir === undefined;
  const certDir = options.certDir ?? mkdtempSync(join(tmpdir(), 'fleetward-kube-fake-'));
  const cert = localCert(certDir);
  const routes = [...coreRoutes(), ...objectRoutes()];
  const stopping = new AbortController();

  const send = (res: ServerResponse, answer: KubeAnswer) => {
    const raw = typeof answer.body === 'string' && answer.headers?.['content-type']?.startsWith('text/');
    const text = raw ? (answer.body as string) : JSON.stringify(answer.body);
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'cache-control': 'no-cache, private',
      'content-length': Buffer.byteLength(text),
      ...answer.headers,
    });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const { runtime, path: inner, scope } = options.resolve(url.pathname);
    const path = inner.length > 1 ? inner.replace(/\/+$/, '') : inner || '/';
    let route: KubeRoute | undefined;
    let match: RegExpExecArray | null = null;
    for (const r of routes) {
      match = r.method === req.method ? r.path.exec(path) : null;
      if (match) {
        route = r;
        break;
      }
    }
    const operation =
      route && match
        ? typeof route.operation === 'string'
          ? route.operation
          : route.operation(match)
        : 'Unknown';
    const body = await readBody(req);
    const name = runtime?.state.name ?? scope;
    const record = (status: number | undefined, fault?: Fault['kind']) =>
      options.log?.record({
        cloud: 'kube',
        operation,
        scope: name,
        at: Date.now(),
        durationMs: performance.now() - started,
        ...(status === undefined ? {} : { status }),
        ...(fault ? { fault } : {}),
      });

    await options.faults?.delay(stopping.signal);
    if (stopping.signal.aborted) return;
    const fault = options.faults?.take({ cloud: 'kube', operation, scope: name });
    if (fault?.kind === 'timeout') {
      record(undefined, 'timeout');
      return; // never answer; the socket is destroyed on stop()
    }
    if (fault?.kind === 'malformed') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"major":"1","minor":');
      record(200, 'malformed');
      return;
    }
    if (fault) {
      const answer = faultAnswer(fault, deniedMessage({ cloud: 'kube', operation }));
      send(res, answer);
      record(answer.status, fault.kind);
      return;
    }
    if (!runtime) {
      const answer = NOT_FOUND_PATH();
      send(res, answer);
      record(answer.status);
      return;
    }
    if (!tokenAccepted(runtime.token, req.headers.authorization)) {
      send(res, kubeStatus(401, 'Unauthorized', 'Unauthorized'));
      record(401);
      return;
    }
    const answer =
      route && match
        ? route.handle({ state: runtime.state, match, url, body, headers: req.headers })
        : NOT_FOUND_PATH();
    send(res, answer);
    record(answer.status);
  };

  const server = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, kubeStatus(500, 'InternalError', 'internal error'));
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let stopped: Promise<void> | undefined;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    caFile: cert.caFile,
    ca: cert.ca,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        stopping.abort();
        options.onStop();
        server.close(() => {
          if (ownCertDir) rmSync(certDir, { recursive: true, force: true });
          resolve();
        });
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

/** Starts one fake API server (one cluster, paths from `/`) on a free loopback port. */
export async function startKubeFake(options: KubeFakeOptions): Promise<KubeFake> {
  const timers = new Timers(options.clock);
  const world = options.world ?? new VeleroWorld();
  let address = '';
  let runtime: ClusterRuntime | undefined;
  const served = await serve({
    ...(options.certDir !== undefined ? { certDir: options.certDir } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.log ? { log: options.log } : {}),
    resolve: (pathname) => ({ ...(runtime ? { runtime } : {}), path: pathname, scope: options.name }),
    onStop: () => timers.stop(),
  });
  address = `127.0.0.1:${served.port}`;
  runtime = makeCluster(
    {
      key: options.name,
      name: options.name,
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.gitVersion !== undefined ? { gitVersion: options.gitVersion } : {}),
      ...(options.velero !== undefined ? { velero: options.velero } : {}),
      ...(options.workloadReadyDelayMs !== undefined
        ? { workloadReadyDelayMs: options.workloadReadyDelayMs }
        : {}),
      ...(options.namespaceTerminationMs !== undefined
        ? { namespaceTerminationMs: options.namespaceTerminationMs }
        : {}),
      server: served.url,
      address: () => address,
    },
    { timers, world, writeBackupObjects: options.writeBackupObjects },
  );
  const cluster = runtime.handle;
  return {
    url: served.url,
    caFile: served.caFile,
    ca: served.ca,
    cluster,
    world,
    setVersion(gitVersion: string) {
      cluster.setVersion(gitVersion);
    },
    stop: () => served.stop(),
  };
}

export interface KubeFleetFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  certDir?: string;
  /** Object storage shared by the clusters' Velero (default: a new one). */
  world?: VeleroWorld;
  /** Called when a Backup completes, with Velero's object-storage layout (wire it to moto S3, a GCS fake, Azurite). */
  writeBackupObjects?: WriteBackupObjects;
  clock?: SimClock;
}

/** One HTTPS server hosting many clusters under `/clusters/<key>/...`. */
export interface KubeFleetFake {
  /** `https://127.0.0.1:<port>`. */
  url: string;
  caFile: string;
  ca: string;
  world: VeleroWorld;
  addCluster(options: KubeClusterOptions): KubeCluster;
  /** The cluster of that key (throws when there is none). */
  cluster(key: string): KubeCluster;
  clusters(): KubeCluster[];
  /** Forgets a cluster: its paths answer 404 from now on. */
  removeCluster(key: string): boolean;
  stop(): Promise<void>;
}

const CLUSTER_KEY = /^[A-Za-z0-9._~-]+$/;

export async function startKubeFleetFake(options: KubeFleetFakeOptions = {}): Promise<KubeFleetFake> {
  const timers = new Timers(options.clock);
  const world = options.world ?? new VeleroWorld();
  const clusters = new Map<string, ClusterRuntime>();
  let port = 0;
  const served = await serve({
    ...(options.certDir !== undefined ? { certDir: options.certDir } : {}),
    ...(options.faults ? { faults: options.faults } : {}),
    ...(options.log ? { log: options.log } : {}),
    resolve: (pathname) => {
      const m = /^\/clusters\/([^/]+)(\/.*)?$/.exec(pathname);
      if (!m) return { path: pathname, scope: 'unknown' };
      let key = m[1]!;
      try {
        key = decodeURIComponent(key);
      } catch {
        // keep it raw
      }
      const runtime = clusters.get(key);
      return { ...(runtime ? { runtime } : {}), path: m[2] ?? '/', scope: key };
    },
    onStop: () => timers.stop(),
  });
  port = served.port;
  return {
    url: served.url,
    caFile: served.caFile,
    ca: served.ca,
    world,
    addCluster(clusterOptions) {
      if (!CLUSTER_KEY.test(clusterOptions.key))
        throw new Error(`invalid cluster key "${clusterOptions.key}"`);
      if (clusters.has(clusterOptions.key)) throw new Error(`cluster "${clusterOptions.key}" already exists`);
      const runtime = makeCluster(
        {
          ...clusterOptions,
          server: `${served.url}/clusters/${clusterOptions.key}`,
          address: () => `127.0.0.1:${port}`,
        },
        { timers, world, writeBackupObjects: options.writeBackupObjects },
      );
      clusters.set(clusterOptions.key, runtime);
      return runtime.handle;
    },
    cluster(key) {
      const runtime = clusters.get(key);
      if (!runtime) throw new Error(`no cluster "${key}" in this fleet fake`);
      return runtime.handle;
    },
    clusters: () => [...clusters.values()].map((r) => r.handle),
    removeCluster: (key) => clusters.delete(key),
    stop: () => served.stop(),
  };
}
