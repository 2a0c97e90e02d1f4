/**
 * The signed hourly audit digests (format: shared/audit/digest.ts).
 *
 * `digest` writes, per cluster, every missing hour's digest from the chain's first hour up to
 * the last due hour (an hour is due `digestDelayMinutes` after it ends), in order, each naming
 * the previous one's key and signature. Before anything is signed or written, the residency
 * guard judges the signing key's region and the evidence store's region against the cluster's
 * jurisdiction (a refusal is a finding, and nothing is written); a key file or a local
 * directory (no region) is accepted only in a `--local-evidence` run, and its digests then say
 * `compliant: false`.
 *
 * Crash safety. The chain head lives in the state store (namespace `audit`, key
 * `digest-head/<cluster-id>`). Per hour: (0) if the hour's digest object already exists, it
 * is adopted (below); else (1) the head records the digest as `pending` (key and SHA-256 of
 * its bytes), (2) the digest is created (conditional create), (3) its bytes are signed and the
 * signature object is created, (4) the head advances to the hour (its key and signature) and
 * the pending record is cleared, in one item put. A run killed anywhere is resumed by the next:
 * an existing digest of the next hour is adopted when it is the cluster's digest of that hour,
 * links to the head, and either its signature verifies with this key or (no signature yet) its
 * bytes are the ones the pending record names — then they are signed now. Anything else is a
 * conflict: a finding, and nothing more is written. ECDSA signatures are randomised, so a
 * rerun never counts on producing the bytes of an earlier attempt; it adopts them instead.
 *
 * `verifyDigests` checks every digest's signature with the published public key, the chain
 * (each digest names its predecessor's key and signature), every listed object's current
 * version, size and SHA-256, and names per cluster: missing, altered, re-versioned and
 * present-but-unlisted objects, forged digests, missing digests (every hour of the chain's
 * range up to the last due hour) and broken links.
 */

import { clusterPrefix, sha256Hex } from '../audit/chunks.ts';
import {
  canonicalPem,
  DIGEST_CONTENT_TYPE,
  DIGEST_SCHEMA,
  type Digest,
  type DigestObject,
  digestKey,
  digestPrefix,
  encodeDigest,
  HOUR_MS,
  hex,
  lastDueHour,
  objectHour,
  PUBLIC_KEY_CONTENT_TYPE,
  PUBLIC_KEY_PREFIX,
  parseDigest,
  parseDigestKey,
  publicKeyFingerprint,
  publicKeyKey,
  SIGNATURE_CONTENT_TYPE,
  signatureKey,
  signatureValid,
} from '../audit/digest.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { Cluster, Finding } from '../model.ts';
import {
  type ArchiveStore,
  type Clock,
  type DigestSigner,
  type ExportedObjects,
  type Log,
  type StateStore,
  systemClock,
} from '../ports.ts';
import type { Residency } from '../residency/index.ts';
import { createLimiter } from '../runtime/concurrency.ts';
import {
  type ErrorInfo,
  errorInfo,
  FleetwardError,
  ObjectExistsError,
  ResidencyError,
} from '../runtime/errors.ts';
import { AUDIT_NS, INVENTORY } from '../state/records.ts';
import {
  type ClusterScope,
  findingsOf,
  forEachCluster,
  inventory,
  recordFindings,
  runId,
  type Sig,
  settled,
  sig,
} from './fleet.ts';

/** The job name findings are recorded under (`findings` / `audit-digest/<cluster-id>`). */
export const DIGEST_JOB = 'audit-digest';
/** Default of `jurisdictions.<j>.audit.digestDelayMinutes`. */
export const DEFAULT_DIGEST_DELAY_MINUTES = 20;
/** Most hours one run writes per cluster (a first run over a long archive continues next run). */
export const DEFAULT_MAX_HOURS = 24 * 31;

/** `digest-head/<cluster-id>` in {@link AUDIT_NS}. */
export const digestHeadKey = (clusterId: string) => `digest-head/${clusterId}`;

/** The digest chain's head in the state store. */
export interface DigestHead {
  /** The chain's first hour (ISO). */
  startHour: string;
  /** The last hour whose digest and signature are durable (ISO); `null` before the first. */
  hour: string | null;
  /** That digest's key and hex signature. */
  key: string | null;
  signature: string | null;
  /** A digest being written: its key and the SHA-256 of its bytes (proves a signature-less digest is ours). */
  pending: { hour: string; key: string; sha256: string } | null;
}

export interface DigestJobDeps {
  config: Pick<FleetConfig, 'jurisdictions'>;
  store: StateStore;
  residency: Residency;
  logger: Log;
  clock: Clock;
  /** The evidence store of a cluster's jurisdiction, where its digests go. May reject (a finding). */
  archives: { for(cluster: Cluster): Promise<ArchiveStore> };
  /** The signer of a cluster's jurisdiction. May reject (a finding: no key configured). */
  signers: { for(cluster: Cluster): Promise<DigestSigner> };
  /**
   * Where a cluster's archived objects are. Default: the evidence store under
   * `audit/<cluster-id>/` (pull chunks and manifests).
   */
  objects?: { for(cluster: Cluster): Promise<ExportedObjects[]> } | undefined;
  /** Whether a key file / local directory may be used (CLI `--local-evidence` only). */
  allowLocalEvidence?: boolean | undefined;
}

export interface DigestOptions extends ClusterScope {
  signal?: AbortSignal | undefined;
  /** Most hours written per cluster in one run (default {@link DEFAULT_MAX_HOURS}). */
  maxHours?: number | undefined;
  /** Clusters handled at once (default 4). */
  concurrency?: number | undefined;
}

export type DigestOutcome =
  | {
      clusterId: string;
      status: 'written' | 'up-to-date';
      /** Digests written by this run (adopted ones excluded). */
      written: number;
      /** Digests of an interrupted run adopted into the chain. */
      adopted: number;
      /** The last digested hour (ISO), `null` when none. */
      head: string | null;
      compliant: boolean;
    }
  | { clusterId: string; status: 'skipped'; findings: Finding[] }
  | { clusterId: string; status: 'failed'; error: ErrorInfo; written: number; adopted: number };

export interface DigestResult {
  runId: string;
  outcomes: DigestOutcome[];
}

/** The evidence store holds a digest the chain cannot adopt: nothing more is written for the cluster. */
export class DigestConflictError extends FleetwardError {
  readonly key: string;
  constructor(message: string, key: string) {
    super(message);
    this.name = 'DigestConflictError';
    this.key = key;
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The archived objects of a cluster: `deps.objects`, else the evidence store under `audit/<id>/`. */
async function objectSources(
  deps: Pick<DigestJobDeps, 'objects' | 'archives'>,
  cluster: Cluster,
  evidence: ArchiveStore,
): Promise<ExportedObjects[]> {
  if (deps.objects) return deps.objects.for(cluster);
  return [{ store: evidence, prefix: clusterPrefix(cluster.id) }];
}

interface Listed {
  store: ArchiveStore;
  key: string;
  versions: string[];
  hour: number | undefined;
}

/** Every object of the sources, with the hour of its creation time. */
async function listObjects(sources: ExportedObjects[], s: Sig): Promise<Listed[]> {
  const out: Listed[] = [];
  for (const { store, prefix } of sources) {
    for (const e of await store.list(prefix, s)) {
      out.push({ store, key: e.key, versions: e.versions, hour: objectHour(e.created) });
    }
  }
  return out;
}

/** Publishes the signer's public key beside the digests (write-once; an existing one must be the same key). */
async function publishKey(store: ArchiveStore, pem: string, s: Sig): Promise<string> {
  const fingerprint = publicKeyFingerprint(pem);
  const key = publicKeyKey(fingerprint);
  const body = new TextEncoder().encode(canonicalPem(pem));
  try {
    await store.create(key, body, { sha256: sha256Hex(body), contentType: PUBLIC_KEY_CONTENT_TYPE }, s);
  } catch (error) {
    if (!(error instanceof ObjectExistsError)) throw error;
    const existing = await store.get(key, s);
    let same = false;
    try {
      same =
        existing !== undefined && publicKeyFingerprint(new TextDecoder().decode(existing)) === fingerprint;
    } catch {
      same = false;
    }
    if (!same) throw new DigestConflictError(`published key ${key} is not the signing key`, key);
  }
  return fingerprint;
}

interface ClusterRun {
  deps: DigestJobDeps;
  cluster: Cluster;
  evidence: ArchiveStore;
  signer: DigestSigner;
  pem: string;
  fingerprint: string;
  compliant: boolean;
  s: Sig;
}

async function putHead(run: ClusterRun, head: DigestHead): Promise<void> {
  await run.deps.store.putMany(AUDIT_NS, [{ key: digestHeadKey(run.cluster.id), value: head }]);
}

/** Signs a digest's stored bytes and creates its signature object (or accepts a valid existing one). */
async function signAndStore(run: ClusterRun, key: string, bytes: Uint8Array): Promise<string> {
  const signature = await run.signer.sign(bytes, run.s);
  // Whatever the signer answered, only a signature that verifies is ever stored.
  if (!signatureValid(bytes, signature, run.pem)) {
    throw new FleetwardError(`the signer's signature of ${key} does not verify with its public key`);
  }
  const sKey = signatureKey(key);
  try {
    await run.evidence.create(
      sKey,
      signature,
      { sha256: sha256Hex(signature), contentType: SIGNATURE_CONTENT_TYPE },
      run.s,
    );
    return hex(signature);
  } catch (error) {
    if (!(error instanceof ObjectExistsError)) throw error;
    // A concurrent run signed it first: its signature is as good, if it verifies.
    const existing = await run.evidence.get(sKey, run.s);
    if (existing && signatureValid(bytes, existing, run.pem)) return hex(existing);
    throw new DigestConflictError(`signature ${sKey} exists and does not verify`, sKey);
  }
}

/**
 * Adopts the existing digest of hour `h` into the chain, or throws a conflict. Adopted when it
 * is this cluster's digest of hour `h`, links to the head, and its signature verifies with this
 * key — or, having no signature yet, its bytes are those the pending record names (ours).
 */
async function adopt(run: ClusterRun, head: DigestHead, h: number, bytes: Uint8Array): Promise<DigestHead> {
  const key = digestKey(run.cluster.id, h);
  let digest: Digest;
  try {
    digest = parseDigest(bytes);
  } catch {
    throw new DigestConflictError(`digest ${key} exists and cannot be read`, key);
  }
  if (
    digest.clusterId !== run.cluster.id ||
    digest.hourStart !== iso(h) ||
    digest.previousDigestKey !== head.key ||
    digest.previousDigestSignature !== head.signature
  ) {
    throw new DigestConflictError(`digest ${key} exists and does not continue the chain`, key);
  }
  const existingSig = await run.evidence.get(signatureKey(key), run.s);
  let signature: string;
  if (existingSig) {
    if (digest.publicKeyFingerprint !== run.fingerprint || !signatureValid(bytes, existingSig, run.pem)) {
      throw new DigestConflictError(`digest ${key} exists with a signature this key did not make`, key);
    }
    signature = hex(existingSig);
  } else if (head.pending?.key === key && head.pending.sha256 === sha256Hex(bytes)) {
    signature = await signAndStore(run, key, bytes);
  } else {
    throw new DigestConflictError(`digest ${key} exists unsigned and is not the one this chain wrote`, key);
  }
  const next: DigestHead = { startHour: head.startHour, hour: iso(h), key, signature, pending: null };
  await putHead(run, next);
  return next;
}

/** Writes (or adopts) the digest of hour `h`; returns the advanced head. */
async function writeHour(
  run: ClusterRun,
  head: DigestHead,
  h: number,
  objects: Listed[],
): Promise<{ head: DigestHead; adopted: boolean }> {
  const { evidence, s } = run;
  const key = digestKey(run.cluster.id, h);
  // (0) Left by an interrupted run: adopt it (before the pending record is replaced).
  const existing = await evidence.get(key, s);
  if (existing) return { head: await adopt(run, head, h, existing), adopted: true };
  const listed: DigestObject[] = [];
  for (const o of objects) {
    const version = o.versions[0];
    if (version === undefined) continue;
    const body = await o.store.get(o.key, { version, ...s });
    if (!body) throw new FleetwardError(`object ${o.key} vanished while its hour was digested`);
    listed.push({ store: o.store.id, key: o.key, version, size: body.byteLength, sha256: sha256Hex(body) });
  }
  const bytes = encodeDigest({
    schema: DIGEST_SCHEMA,
    clusterId: run.cluster.id,
    jurisdiction: run.cluster.jurisdiction,
    hourStart: iso(h),
    hourEnd: iso(h + HOUR_MS),
    objects: listed,
    previousDigestKey: head.key,
    previousDigestSignature: head.signature,
    keyId: run.signer.keyId,
    publicKeyFingerprint: run.fingerprint,
    algorithm: run.signer.algorithm,
    signingTime: run.deps.clock.now().toISOString(),
    compliant: run.compliant,
  });
  const sha256 = sha256Hex(bytes);
  // (1) The pending record: a rerun knows a signature-less digest of these bytes is its own.
  const pendingHead: DigestHead = { ...head, pending: { hour: iso(h), key, sha256 } };
  await putHead(run, pendingHead);
  // (2) The digest, write-once.
  try {
    await evidence.create(key, bytes, { sha256, contentType: DIGEST_CONTENT_TYPE }, s);
  } catch (error) {
    if (!(error instanceof ObjectExistsError)) throw error;
    const raced = await evidence.get(key, s);
    if (!raced) throw new DigestConflictError(`digest ${key} exists and cannot be read`, key);
    return { head: await adopt(run, pendingHead, h, raced), adopted: true };
  }
  // (3) Its signature, (4) the head.
  const signature = await signAndStore(run, key, bytes);
  const next: DigestHead = { startHour: head.startHour, hour: iso(h), key, signature, pending: null };
  await putHead(run, next);
  return { head: next, adopted: false };
}

/** Refuses a location outside the jurisdiction; `null` only for a local, non-compliant run. */
function guard(
  deps: DigestJobDeps,
  cluster: Cluster,
  located: { cloud: Cluster['cloud'] | 'aws' | 'gcp' | 'azure'; region: string } | null,
  what: string,
): string | undefined {
  if (located === null) {
    return deps.allowLocalEvidence === true
      ? undefined
      : `the ${what} has no region (a local file or directory); residency cannot be verified and local evidence is not allowed in this run`;
  }
  try {
    deps.residency.assertResidency(
      { jurisdiction: cluster.jurisdiction, clusterId: cluster.id },
      { cloud: located.cloud as 'aws' | 'gcp' | 'azure', region: located.region, what },
    );
    return undefined;
  } catch (error) {
    if (!(error instanceof ResidencyError)) throw error;
    return error.message;
  }
}

async function digestCluster(
  deps: DigestJobDeps,
  cluster: Cluster,
  options: DigestOptions,
): Promise<DigestOutcome> {
  const now = deps.clock.now();
  const s = sig(options.signal);
  const finding = findingsOf(cluster, now);
  const skip = async (f: Finding): Promise<DigestOutcome> => {
    await recordFindings(deps.store, DIGEST_JOB, cluster.id, [f]);
    deps.logger.info('Audit digest skipped', { cluster: cluster.id, finding: f.kind });
    return { clusterId: cluster.id, status: 'skipped', findings: [f] };
  };
  const attempt = <T>(fn: () => Promise<T>) => settled(fn, options.signal);
  const jurisdiction = deps.config.jurisdictions[cluster.jurisdiction];
  if (!jurisdiction) {
    return skip(
      finding('unassigned', 'high', 'cluster is in no configured jurisdiction: no digest is written'),
    );
  }
  const signer = await attempt(() => deps.signers.for(cluster));
  if (!signer.ok) {
    return skip(
      finding('digest-key-missing', 'high', `no digest signing key: ${errorInfo(signer.error).message}`),
    );
  }
  const evidence = await attempt(() => deps.archives.for(cluster));
  if (!evidence.ok) {
    return skip(
      finding('archive-unavailable', 'high', `no evidence store: ${errorInfo(evidence.error).message}`),
    );
  }
  // The guard judges where the digest is signed (its hashes travel to the key service) and stored.
  const keyAt = await attempt(() => signer.value.location(s));
  if (!keyAt.ok) {
    return skip(
      finding(
        'digest-key-unavailable',
        'high',
        `cannot locate the digest key: ${errorInfo(keyAt.error).message}`,
      ),
    );
  }
  const keyRefusal = guard(deps, cluster, keyAt.value, 'audit digest signing key');
  if (keyRefusal) return skip(finding('digest-key-outside-jurisdiction', 'critical', keyRefusal));
  const storeAt = await attempt(() => evidence.value.location(s));
  if (!storeAt.ok) {
    return skip(
      finding(
        'archive-unavailable',
        'high',
        `cannot locate ${evidence.value.id}: ${errorInfo(storeAt.error).message}`,
      ),
    );
  }
  const storeRefusal = guard(deps, cluster, storeAt.value, 'audit digest');
  if (storeRefusal) return skip(finding('archive-outside-jurisdiction', 'critical', storeRefusal));
  const immutable = await attempt(() => evidence.value.assertImmutable(jurisdiction.audit.retentionDays, s));
  if (!immutable.ok) {
    return skip(
      finding(
        'archive-not-immutable',
        'critical',
        `${evidence.value.id} is not write-once: ${errorInfo(immutable.error).message}`,
      ),
    );
  }
  const compliant = keyAt.value !== null && storeAt.value !== null;
  const delayMs = (jurisdiction.audit.digestDelayMinutes ?? DEFAULT_DIGEST_DELAY_MINUTES) * 60_000;
  const due = lastDueHour(now.getTime(), delayMs);
  let written = 0;
  let adopted = 0;
  try {
    const pem = await signer.value.publicKeyPem(s);
    const fingerprint = await publishKey(evidence.value, pem, s);
    const run: ClusterRun = {
      deps,
      cluster,
      evidence: evidence.value,
      signer: signer.value,
      pem,
      fingerprint,
      compliant,
      s,
    };
    const objects = await listObjects(await objectSources(deps, cluster, evidence.value), s);
    let head = await deps.store.get<DigestHead>(AUDIT_NS, digestHeadKey(cluster.id));
    if (!head) {
      // The chain starts at the hour of the oldest object (or of a digest a lost head left),
      // else at the last due hour: recomputed the same way by a rerun.
      let start = due;
      for (const o of objects) if (o.hour !== undefined && o.hour < start) start = o.hour;
      for (const e of await evidence.value.list(digestPrefix(cluster.id), s)) {
        const parsed = parseDigestKey(cluster.id, e.key);
        if (parsed && parsed.hourStart < start) start = parsed.hourStart;
      }
      head = { startHour: iso(start), hour: null, key: null, signature: null, pending: null };
      await putHead(run, head);
    }
    const byHour = new Map<number, Listed[]>();
    for (const o of objects) {
      if (o.hour === undefined) {
        deps.logger.warn('Archived object has no creation time', { cluster: cluster.id, key: o.key });
        continue;
      }
      byHour.set(o.hour, [...(byHour.get(o.hour) ?? []), o]);
    }
    const maxHours = options.maxHours ?? DEFAULT_MAX_HOURS;
    let h = head.hour === null ? Date.parse(head.startHour) : Date.parse(head.hour) + HOUR_MS;
    for (; h <= due && written + adopted < maxHours; h += HOUR_MS) {
      options.signal?.throwIfAborted();
      const step = await writeHour(run, head, h, byHour.get(h) ?? []);
      head = step.head;
      if (step.adopted) adopted++;
      else written++;
    }
    await recordFindings(deps.store, DIGEST_JOB, cluster.id, []);
    deps.logger.info('Audit digests written', { cluster: cluster.id, written, adopted, head: head.hour });
    return {
      clusterId: cluster.id,
      status: written + adopted > 0 ? 'written' : 'up-to-date',
      written,
      adopted,
      head: head.hour,
      compliant,
    };
  } catch (error) {
    if (options.signal?.aborted) throw error;
    if (error instanceof DigestConflictError) {
      await recordFindings(deps.store, DIGEST_JOB, cluster.id, [
        finding('audit-digest-conflict', 'critical', `${error.message}; run audit verify`),
      ]);
    }
    deps.logger.warn('Audit digest failed', { cluster: cluster.id, error: errorInfo(error) });
    return { clusterId: cluster.id, status: 'failed', error: errorInfo(error), written, adopted };
  }
}

/** One item of a digest run: ids only, like the dispatcher's work items. */
export interface DigestItem {
  job: typeof DIGEST_JOB;
  clusterId: string;
  runId: string;
}

/** The digest job in the plan → items → run(item) shape (in-process; hourly work is small). */
export function digestWork(tuning: Pick<DigestOptions, 'maxHours'> = {}) {
  return {
    job: DIGEST_JOB,
    async plan(deps: DigestJobDeps, scope: ClusterScope): Promise<DigestItem[]> {
      const clusters = await inventory(deps.store, scope);
      const run = runId(deps.clock.now());
      return clusters.map((c) => ({ job: DIGEST_JOB, clusterId: c.id, runId: run }));
    },
    async run(deps: DigestJobDeps, item: DigestItem, signal?: AbortSignal): Promise<DigestOutcome> {
      const cluster = await deps.store.get<Cluster>(INVENTORY, item.clusterId);
      if (!cluster) return { clusterId: item.clusterId, status: 'skipped', findings: [] };
      return digestCluster(deps, cluster, { ...tuning, ...(signal ? { signal } : {}) });
    },
    failure: (outcome: DigestOutcome) => (outcome.status === 'failed' ? outcome.error.message : undefined),
  };
}

/** Writes the due digests of every cluster in scope (one cluster's failure never stops the others). */
export async function digest(deps: DigestJobDeps, options: DigestOptions = {}): Promise<DigestResult> {
  const { clusterId, jurisdiction, signal, concurrency, maxHours } = options;
  const work = digestWork({ maxHours });
  const items = await work.plan(deps, { clusterId, jurisdiction });
  const limit = createLimiter(concurrency ?? 4);
  const outcomes = await Promise.all(items.map((item) => limit(() => work.run(deps, item, signal))));
  return { runId: items[0]?.runId ?? runId(deps.clock.now()), outcomes };
}

// ---------------------------------------------------------------------------------------------
// Verification

export type DigestProblemKind =
  | 'missing-object'
  | 'altered-object'
  | 're-versioned-object'
  | 'unlisted-object'
  | 'forged-digest'
  | 'missing-digest'
  | 'broken-link';

export interface DigestProblem {
  problem: DigestProblemKind;
  /** The hour concerned (ISO), `null` for an object no digest can place. */
  hour: string | null;
  /** The digest or object key. */
  key: string;
  /** The object's store, for object problems. */
  store?: string;
  detail: string;
}

/**
 * - `intact`: every hour of the chain has a digest whose signature verifies, links, and whose objects check out;
 * - `broken`: `problems` names what does not;
 * - `unverified`: a store could not be read (`error`): nothing is known, never taken for tampering;
 * - `none`: no chain to verify yet (`reason`).
 */
export type DigestStatus = 'intact' | 'broken' | 'unverified' | 'none';

export interface DigestClusterResult {
  clusterId: string;
  digests: {
    status: DigestStatus;
    /** Digests checked (present, whatever their problems). */
    hours: number;
    /** The chain's range (ISO hour starts), `null` when there is none. */
    from: string | null;
    to: string | null;
    problems: DigestProblem[];
    reason?: string;
    error?: ErrorInfo;
  };
}

export interface DigestVerifyResult {
  /** `false` when any cluster's digests are `broken` or `unverified`. */
  ok: boolean;
  clusters: DigestClusterResult[];
  counts: Record<DigestStatus, number>;
}

export type DigestVerifyDeps = Pick<DigestJobDeps, 'config' | 'store' | 'archives' | 'objects'> & {
  clock?: Clock | undefined;
};

export interface DigestVerifyOptions extends ClusterScope {
  signal?: AbortSignal | undefined;
  /**
   * How long after an hour is due its digest may still be missing without a problem (the
   * schedule's interval; default 60 minutes). 0 expects every due hour.
   */
  graceMinutes?: number | undefined;
  /**
   * Fingerprints ({@link publicKeyFingerprint}) of the keys a digest may be signed with: one list
   * for every cluster, or a list per jurisdiction id. Absent (or no list for a cluster's
   * jurisdiction): any key published under `digests/public-keys/`.
   */
  trustedKeys?: readonly string[] | Readonly<Record<string, readonly string[]>> | undefined;
}

async function verifyClusterDigests(
  deps: DigestVerifyDeps,
  cluster: Cluster,
  options: DigestVerifyOptions,
  now: number,
): Promise<DigestClusterResult['digests']> {
  const s = sig(options.signal);
  const jurisdiction = deps.config.jurisdictions[cluster.jurisdiction];
  const none = (reason: string): DigestClusterResult['digests'] => ({
    status: 'none',
    hours: 0,
    from: null,
    to: null,
    problems: [],
    reason,
  });
  if (!jurisdiction) return none('cluster is in no configured jurisdiction');
  const evidence = await deps.archives.for(cluster);
  const head = await deps.store.get<DigestHead>(AUDIT_NS, digestHeadKey(cluster.id));
  const digestListing = await evidence.list(digestPrefix(cluster.id), s);
  const found = new Map<number, { digest?: string[]; signature?: string[] }>();
  for (const e of digestListing) {
    const parsed = parseDigestKey(cluster.id, e.key);
    if (!parsed) continue;
    const slot = found.get(parsed.hourStart) ?? {};
    slot[parsed.kind] = e.versions;
    found.set(parsed.hourStart, slot);
  }
  const hours = [...found.keys()].sort((a, b) => a - b);
  const starts = [...(head ? [Date.parse(head.startHour)] : []), ...(hours.length > 0 ? [hours[0]!] : [])];
  if (starts.length === 0) return none('no digest written yet');
  const start = Math.min(...starts);
  const delayMs = (jurisdiction.audit.digestDelayMinutes ?? DEFAULT_DIGEST_DELAY_MINUTES) * 60_000;
  const graceMs = (options.graceMinutes ?? 60) * 60_000;
  let end = lastDueHour(now, delayMs + graceMs);
  // Digests written ahead of the grace are checked too.
  for (const h of hours) if (h > end) end = h;
  if (head?.hour) end = Math.max(end, Date.parse(head.hour));

  // Published keys, by fingerprint: a key whose file name is not its fingerprint is not used.
  const keys = new Map<string, string>();
  for (const e of await evidence.list(PUBLIC_KEY_PREFIX, s)) {
    const bytes = await evidence.get(e.key, s);
    if (!bytes) continue;
    try {
      const pem = new TextDecoder().decode(bytes);
      const fp = publicKeyFingerprint(pem);
      if (e.key === publicKeyKey(fp)) keys.set(fp, pem);
    } catch {}
  }
  const keysOf = options.trustedKeys;
  const listed = Array.isArray(keysOf)
    ? (keysOf as readonly string[])
    : (keysOf as Readonly<Record<string, readonly string[]>> | undefined)?.[cluster.jurisdiction];
  const trusted = listed ? new Set(listed) : undefined;

  const sources = await objectSources(deps, cluster, evidence);
  const stores = new Map<string, ArchiveStore>([[evidence.id, evidence]]);
  for (const src of sources) stores.set(src.store.id, src.store);
  const objects = await listObjects(sources, s);
  const byId = new Map(objects.map((o) => [`${o.store.id}\u0000${o.key}`, o]));

  const problems: DigestProblem[] = [];
  const problem = (p: DigestProblem) => problems.push(p);
  const listedIds = new Set<string>();
  let checked = 0;
  let previousKey: string | null = null;
  let previousSignature: string | null = null;
  for (let h = start; h <= end; h += HOUR_MS) {
    const key = digestKey(cluster.id, h);
    const hour = iso(h);
    const expectedPrevious = previousKey;
    const expectedPreviousSignature = previousSignature;
    previousKey = key;
    previousSignature = null;
    const slot = found.get(h);
    if (!slot?.digest) {
      problem({ problem: 'missing-digest', hour, key, detail: 'no digest for this hour' });
      continue;
    }
    checked++;
    const bytes = await evidence.get(key, s);
    if (!bytes) {
      problem({ problem: 'missing-digest', hour, key, detail: 'digest vanished while read' });
      continue;
    }
    if (slot.digest.length > 1) {
      problem({ problem: 'forged-digest', hour, key, detail: 'the digest has more than one version' });
    }
    let digest: Digest;
    try {
      digest = parseDigest(bytes);
    } catch (error) {
      problem({ problem: 'forged-digest', hour, key, detail: errorInfo(error).message });
      continue;
    }
    const sigBytes = slot.signature ? await evidence.get(signatureKey(key), s) : undefined;
    const pem = keys.get(digest.publicKeyFingerprint);
    if (!sigBytes) {
      problem({ problem: 'forged-digest', hour, key, detail: 'the digest has no signature' });
    } else if (!pem) {
      problem({
        problem: 'forged-digest',
        hour,
        key,
        detail: 'the digest names a key that is not published',
      });
    } else if (trusted && !trusted.has(digest.publicKeyFingerprint)) {
      problem({
        problem: 'forged-digest',
        hour,
        key,
        detail: 'the digest is signed with a key that is not trusted',
      });
    } else if (!signatureValid(bytes, sigBytes, pem)) {
      problem({
        problem: 'forged-digest',
        hour,
        key,
        detail: 'the signature does not verify with the published key',
      });
    } else {
      if ((slot.signature?.length ?? 0) > 1) {
        problem({ problem: 'forged-digest', hour, key, detail: 'the signature has more than one version' });
      }
      previousSignature = hex(sigBytes);
    }
    if (digest.clusterId !== cluster.id || digest.hourStart !== hour || digest.hourEnd !== iso(h + HOUR_MS)) {
      problem({ problem: 'forged-digest', hour, key, detail: 'the digest names another cluster or hour' });
    }
    if (digest.previousDigestKey !== expectedPrevious) {
      problem({
        problem: 'broken-link',
        hour,
        key,
        detail: `names ${digest.previousDigestKey ?? 'no'} previous digest, not ${expectedPrevious ?? 'none'}`,
      });
    } else if (
      expectedPreviousSignature !== null &&
      digest.previousDigestSignature !== expectedPreviousSignature
    ) {
      problem({
        problem: 'broken-link',
        hour,
        key,
        detail: "previousDigestSignature is not the previous digest's signature",
      });
    }
    for (const o of digest.objects) {
      const id = `${o.store}\u0000${o.key}`;
      listedIds.add(id);
      const at = { hour, key: o.key, store: o.store };
      const store = stores.get(o.store);
      if (!store) {
        problem({
          problem: 'missing-object',
          ...at,
          detail: 'the store it names is not one of this cluster',
        });
        continue;
      }
      const entry =
        byId.get(id) ??
        (await store.list(o.key, s))
          .filter((e) => e.key === o.key)
          .map((e) => ({ store, key: e.key, versions: e.versions, hour: objectHour(e.created) }))[0];
      if (!entry || entry.versions.length === 0) {
        problem({ problem: 'missing-object', ...at, detail: 'the object is gone' });
        continue;
      }
      if (!entry.versions.includes(o.version)) {
        problem({
          problem: 'altered-object',
          ...at,
          detail: 'the listed version is gone: the bytes were replaced',
        });
        continue;
      }
      if (entry.versions[0] !== o.version) {
        problem({
          problem: 're-versioned-object',
          ...at,
          detail: 'a newer version sits on top of the listed one',
        });
      }
      const body = await store.get(o.key, { version: o.version, ...s });
      if (!body) {
        problem({ problem: 'missing-object', ...at, detail: 'the listed version cannot be read' });
      } else if (body.byteLength !== o.size || sha256Hex(body) !== o.sha256) {
        problem({ problem: 'altered-object', ...at, detail: 'size or SHA-256 differs from the digest' });
      }
    }
  }
  // An object created up to the last checked hour that no digest lists: added behind the chain's back.
  for (const o of objects) {
    if (listedIds.has(`${o.store.id}\u0000${o.key}`)) continue;
    if (o.hour !== undefined && o.hour > end) continue;
    problem({
      problem: 'unlisted-object',
      hour: o.hour === undefined ? null : iso(o.hour),
      key: o.key,
      store: o.store.id,
      detail:
        o.hour === undefined
          ? 'no digest lists it (the store reports no creation time)'
          : 'no digest lists it',
    });
  }
  return {
    status: problems.length > 0 ? 'broken' : 'intact',
    hours: checked,
    from: iso(start),
    to: iso(end),
    problems,
  };
}

/**
 * Verifies every cluster's digest chain in scope. `ok` is false when any chain has a problem
 * (`broken`) or could not be read (`unverified`).
 */
export async function verifyDigests(
  deps: DigestVerifyDeps,
  options: DigestVerifyOptions = {},
): Promise<DigestVerifyResult> {
  const clusters = await inventory(deps.store, options);
  const now = (deps.clock ?? systemClock).now().getTime();
  const results = await forEachCluster(clusters, 4, async (cluster): Promise<DigestClusterResult> => {
    try {
      return { clusterId: cluster.id, digests: await verifyClusterDigests(deps, cluster, options, now) };
    } catch (error) {
      if (options.signal?.aborted) throw error;
      return {
        clusterId: cluster.id,
        digests: {
          status: 'unverified',
          hours: 0,
          from: null,
          to: null,
          problems: [],
          error: errorInfo(error),
        },
      };
    }
  });
  const counts: Record<DigestStatus, number> = { intact: 0, broken: 0, unverified: 0, none: 0 };
  for (const r of results) counts[r.digests.status]++;
  return {
    ok: results.every((r) => r.digests.status === 'intact' || r.digests.status === 'none'),
    clusters: results,
    counts,
  };
}
