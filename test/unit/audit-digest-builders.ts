/**
 * Builders of the digest tests: a local evidence directory holding a cluster's audit objects
 * placed in given hours, a state store with the cluster, a local signer, an injected clock,
 * and wrappers that kill a run at its N-th write.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterPrefix, sha256Hex } from '../../shared/audit/chunks.ts';
import { createLocalDigestSigner } from '../../shared/audit/local-signer.ts';
import { LocalArchiveStore } from '../../shared/audit/local-store.ts';
import { Jurisdiction } from '../../shared/config/schema.ts';
import type { DigestJobDeps } from '../../shared/jobs/audit-digest.ts';
import type {
  ArchivedObject,
  ArchiveStore,
  DigestSigner,
  StateStore,
  StoredItem,
} from '../../shared/ports.ts';
import { Residency } from '../../shared/residency/index.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { INVENTORY } from '../../shared/state/records.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';
import { auditCluster } from './audit-builders.ts';

export const cluster = auditCluster;
export const HOUR = 3_600_000;
/** "Now" of the digest tests: 12:30 UTC; with the 20-minute delay the last due hour is 11:00. */
export const NOW = Date.parse('2026-11-21T12:30:00Z');
export const hourAt = (hh: number) => Date.parse(`2026-11-21T${String(hh).padStart(2, '0')}:00:00Z`);

/** Writes an object under the cluster's audit prefix and dates its file `minutes` into hour `hh`. */
export async function putObject(
  dir: string,
  store: ArchiveStore,
  name: string,
  hh: number,
  body = `{"n":"${name}"}\n`,
  minutes = 7,
): Promise<string> {
  const key = `${clusterPrefix(cluster.id)}2026/11/21/${name}`;
  const bytes = new TextEncoder().encode(body);
  await store.create(key, bytes, { sha256: sha256Hex(bytes), contentType: 'application/json' });
  const when = new Date(hourAt(hh) + minutes * 60_000);
  await utimes(join(dir, ...key.split('/')), when, when);
  return key;
}

/** Which writes a run makes, in order: archive creates, state puts and signatures. */
export type WriteKind = 'create' | 'put' | 'sign';

/** Counts writes and throws at write `failAt` (before it, or after it is durable). */
export class Kill {
  count = 0;
  readonly failAt: number;
  readonly after: boolean;
  fired = false;
  readonly seen: WriteKind[] = [];
  constructor(failAt = Number.POSITIVE_INFINITY, after = false) {
    this.failAt = failAt;
    this.after = after;
  }
  async around<T>(kind: WriteKind, fn: () => Promise<T>): Promise<T> {
    this.count++;
    this.seen.push(kind);
    const hit = this.count === this.failAt;
    if (hit && !this.after) {
      this.fired = true;
      throw new Error(`killed before write ${this.count} (${kind})`);
    }
    const out = await fn();
    if (hit) {
      this.fired = true;
      throw new Error(`killed after write ${this.count} (${kind})`);
    }
    return out;
  }
}

export function killableStore(inner: ArchiveStore, kill: Kill): ArchiveStore {
  return {
    id: inner.id,
    compliantStorage: (inner as { compliantStorage?: boolean }).compliantStorage,
    location: (o) => inner.location(o),
    assertImmutable: (d, o) => inner.assertImmutable(d, o),
    create: (key, body, meta, o): Promise<ArchivedObject> =>
      kill.around('create', () => inner.create(key, body, meta, o)),
    get: (key, o) => inner.get(key, o),
    list: (prefix, o) => inner.list(prefix, o),
  } as ArchiveStore;
}

export function killableState(inner: StateStore, kill: Kill): StateStore {
  return {
    get: (ns, key) => inner.get(ns, key),
    list: (ns, o) => inner.list(ns, o),
    putMany: (ns, items: StoredItem[]) => kill.around('put', () => inner.putMany(ns, items)),
    putIfAbsent: (ns, item) => inner.putIfAbsent(ns, item),
    deleteMany: (ns, keys) => inner.deleteMany(ns, keys),
    close: () => inner.close(),
  };
}

export function killableSigner(inner: DigestSigner, kill: Kill): DigestSigner {
  return {
    keyId: inner.keyId,
    algorithm: inner.algorithm,
    location: (o) => inner.location(o),
    sign: (m, o) => kill.around('sign', () => inner.sign(m, o)),
    publicKeyPem: (o) => inner.publicKeyPem(o),
  };
}

/** A signer that says its key lives in `region` (for the residency guard), signing with a fresh key. */
export function regionalSigner(region: string): DigestSigner {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    keyId: `arn:aws:kms:${region}:111111111111:key/test`,
    algorithm: 'ECDSA_SHA_256',
    location: async () => ({ cloud: 'aws', region }),
    sign: async (m) => new Uint8Array(sign('sha256', m, { key: privateKey, dsaEncoding: 'der' })),
    publicKeyPem: async () => publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export interface DigestEnv {
  dir: string;
  keysDir: string;
  local: LocalArchiveStore;
  state: SqliteStateStore;
  signer: DigestSigner;
  clock: { t: number };
  deps(options?: { kill?: Kill; signer?: DigestSigner; allowLocalEvidence?: boolean }): DigestJobDeps;
  cleanup(): Promise<void>;
}

/** A fresh environment: empty evidence directory, the cluster in the inventory, a local signer. */
export async function digestEnv(): Promise<DigestEnv> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetward-digest-'));
  const keysDir = await mkdtemp(join(tmpdir(), 'fleetward-keys-'));
  const local = new LocalArchiveStore(dir);
  const state = new SqliteStateStore({ path: ':memory:' });
  await state.putMany(INVENTORY, [{ key: cluster.id, value: cluster }]);
  const signer = await createLocalDigestSigner('eu', { dir: keysDir });
  const clock = { t: NOW };
  const config = { jurisdictions: { eu: Jurisdiction.parse({ preset: 'eu-gdpr' }) } };
  const residency = new Residency({ eu: { preset: 'eu-gdpr' } });
  return {
    dir,
    keysDir,
    local,
    state,
    signer,
    clock,
    deps(options = {}) {
      const kill = options.kill ?? new Kill();
      const s = options.signer ?? signer;
      return {
        config,
        store: killableState(state, kill),
        residency,
        logger: silentLogger,
        clock: { now: () => new Date(clock.t) },
        archives: { for: async () => killableStore(local, kill) },
        signers: { for: async () => killableSigner(s, kill) },
        allowLocalEvidence: options.allowLocalEvidence ?? true,
      };
    },
    async cleanup() {
      await state.close();
      await rm(dir, { recursive: true, force: true });
      await rm(keysDir, { recursive: true, force: true });
    },
  };
}
