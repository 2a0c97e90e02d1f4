/**
 * Signed hourly audit digests (modelled on CloudTrail log-file integrity validation).
 *
 * Every UTC hour, per cluster, one digest lists each archived object created in that hour
 * (pull chunks and their manifests, or the files a cloud's export wrote) with its store, key,
 * version, size and SHA-256, and names the previous hour's digest and signature, so the
 * digests form a chain; an hour without objects gets a digest too, so a truncated tail shows.
 * A digest holds hashes only, never log content.
 *
 * Layout in the jurisdiction's evidence store:
 * - `digests/<cluster-id>/<yyyy>/<mm>/<dd>/<hh>.json`: the digest, canonical JSON (below);
 * - `digests/<cluster-id>/<yyyy>/<mm>/<dd>/<hh>.json.sig`: the DER-encoded ECDSA P-256
 *   signature (SHA-256) of exactly the bytes of the `.json` object;
 * - `digests/public-keys/<sha256-of-DER-SPKI>.pem`: each signing key's public key.
 *
 * Signing the object's bytes as they are stored (and keeping the signature beside it, as
 * CloudTrail keeps it in object metadata) lets an auditor check one digest with openssl
 * alone: `openssl dgst -sha256 -verify <fingerprint>.pem -signature <hh>.json.sig <hh>.json`.
 * Canonical JSON: the fields in the order of {@link Digest}, objects sorted by store then key,
 * no whitespace, one trailing newline. Nothing re-serialises a digest before checking it.
 */
import { createHash, createPublicKey, type KeyObject, verify as verifySignature } from 'node:crypto';
import { FleetwardError } from '../runtime/errors.ts';

export const DIGEST_SCHEMA = 'fleetward.audit.digest/v1';
export const DIGEST_CONTENT_TYPE = 'application/json';
export const SIGNATURE_CONTENT_TYPE = 'application/octet-stream';
export const PUBLIC_KEY_CONTENT_TYPE = 'application/x-pem-file';
export const DIGEST_PREFIX = 'digests/';
export const PUBLIC_KEY_PREFIX = 'digests/public-keys/';
export const HOUR_MS = 3_600_000;

/** One archived object as a digest lists it. */
export interface DigestObject {
  /** The store's id (`aws:<bucket>`, `gcs:<bucket>`, `azure:<account>/<container>`, `local:<dir>`). */
  store: string;
  key: string;
  /** The version the store reports for the object's bytes at digest time. */
  version: string;
  /** Size in bytes. */
  size: number;
  /** Hex SHA-256 of the bytes. */
  sha256: string;
}

/** A digest (`fleetward.audit.digest/v1`); the field order here is the canonical order. */
export interface Digest {
  schema: typeof DIGEST_SCHEMA;
  clusterId: string;
  jurisdiction: string;
  /** Start of the hour, inclusive (ISO 8601, UTC, whole hour). */
  hourStart: string;
  /** End of the hour, exclusive. */
  hourEnd: string;
  /** Every object whose store-reported creation time falls in the hour, sorted by store then key. */
  objects: DigestObject[];
  /** The previous hour's digest key; `null` for the first digest of the chain. */
  previousDigestKey: string | null;
  /** Hex of the previous digest's DER signature; `null` for the first digest. */
  previousDigestSignature: string | null;
  /** The signing key (KMS key ARN, or `local:<fingerprint>`). */
  keyId: string;
  /** Hex SHA-256 of the public key's DER SubjectPublicKeyInfo: the `.pem` under `digests/public-keys/`. */
  publicKeyFingerprint: string;
  algorithm: 'ECDSA_SHA_256';
  /** When the digest was signed (ISO 8601). */
  signingTime: string;
  /** `false` when signed with a local key file, or stored in a local directory: not compliant. */
  compliant: boolean;
}

/** A digest or signature that cannot be read. */
export class DigestFormatError extends FleetwardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DigestFormatError';
  }
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** The start (ms) of the UTC hour holding `ms`. */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** `digests/<cluster-id>/` */
export function digestPrefix(clusterId: string): string {
  return `${DIGEST_PREFIX}${clusterId}/`;
}

/** `digests/<cluster-id>/<yyyy>/<mm>/<dd>/<hh>.json` of the hour starting at `hourStartMs`. */
export function digestKey(clusterId: string, hourStartMs: number): string {
  const d = new Date(hourStartMs);
  return `${digestPrefix(clusterId)}${d.getUTCFullYear()}/${pad(d.getUTCMonth() + 1)}/${pad(
    d.getUTCDate(),
  )}/${pad(d.getUTCHours())}.json`;
}

/** The signature object of a digest key. */
export function signatureKey(key: string): string {
  return `${key}.sig`;
}

const DIGEST_TAIL = /^(\d{4})\/(\d{2})\/(\d{2})\/(\d{2})\.json(\.sig)?$/;

/** Parses a key under {@link digestPrefix}: the hour it covers and whether it is the signature; `undefined` otherwise. */
export function parseDigestKey(
  clusterId: string,
  key: string,
): { hourStart: number; kind: 'digest' | 'signature' } | undefined {
  const prefix = digestPrefix(clusterId);
  if (!key.startsWith(prefix)) return undefined;
  const m = DIGEST_TAIL.exec(key.slice(prefix.length));
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]));
  // A key like 2026/02/30 does not name a real hour: not ours.
  if (digestKey(clusterId, ms) !== key.replace(/\.sig$/, '')) return undefined;
  return { hourStart: ms, kind: m[5] ? 'signature' : 'digest' };
}

/** The DER SubjectPublicKeyInfo of a PEM public key. @throws DigestFormatError */
export function publicKeyDer(pem: string): Buffer {
  try {
    return createPublicKey(pem).export({ type: 'spki', format: 'der' });
  } catch (error) {
    throw new DigestFormatError('public key is not a pem subjectpublickeyinfo', { cause: error });
  }
}

/** Hex SHA-256 of a public key's DER SubjectPublicKeyInfo (what names its `.pem`). */
export function publicKeyFingerprint(pem: string): string {
  return createHash('sha256').update(publicKeyDer(pem)).digest('hex');
}

/** `digests/public-keys/<fingerprint>.pem` */
export function publicKeyKey(fingerprint: string): string {
  return `${PUBLIC_KEY_PREFIX}${fingerprint}.pem`;
}

/** The PEM form the store holds for a key: re-encoded from its DER, so equal keys give equal bytes. */
export function canonicalPem(pem: string): string {
  return createPublicKey({ key: publicKeyDer(pem), format: 'der', type: 'spki' })
    .export({ type: 'spki', format: 'pem' })
    .toString();
}

/** The digest's canonical bytes: what is stored and signed. */
export function encodeDigest(digest: Digest): Uint8Array {
  const ordered: Digest = {
    schema: digest.schema,
    clusterId: digest.clusterId,
    jurisdiction: digest.jurisdiction,
    hourStart: digest.hourStart,
    hourEnd: digest.hourEnd,
    objects: [...digest.objects]
      .sort((a, b) => cmp(a.store, b.store) || cmp(a.key, b.key))
      .map((o) => ({ store: o.store, key: o.key, version: o.version, size: o.size, sha256: o.sha256 })),
    previousDigestKey: digest.previousDigestKey,
    previousDigestSignature: digest.previousDigestSignature,
    keyId: digest.keyId,
    publicKeyFingerprint: digest.publicKeyFingerprint,
    algorithm: digest.algorithm,
    signingTime: digest.signingTime,
    compliant: digest.compliant,
  };
  return new TextEncoder().encode(`${JSON.stringify(ordered)}\n`);
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isHex = (v: unknown): v is string => isStr(v) && /^[0-9a-f]*$/.test(v) && v.length % 2 === 0;

/** Reads a digest's bytes, checking every field's type. @throws DigestFormatError */
export function parseDigest(bytes: Uint8Array): Digest {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as Record<string, unknown>;
  } catch (error) {
    throw new DigestFormatError('digest is not json', { cause: error });
  }
  const bad = (field: string): never => {
    throw new DigestFormatError(`digest field ${field} is missing or malformed`);
  };
  if (!o || typeof o !== 'object') return bad('(root)');
  if (o.schema !== DIGEST_SCHEMA) bad('schema');
  for (const f of ['clusterId', 'jurisdiction', 'hourStart', 'hourEnd', 'keyId', 'signingTime'] as const) {
    if (!isStr(o[f])) bad(f);
  }
  if (!isHex(o.publicKeyFingerprint)) bad('publicKeyFingerprint');
  if (o.algorithm !== 'ECDSA_SHA_256') bad('algorithm');
  if (typeof o.compliant !== 'boolean') bad('compliant');
  if (!(o.previousDigestKey === null || isStr(o.previousDigestKey))) bad('previousDigestKey');
  if (!(o.previousDigestSignature === null || isHex(o.previousDigestSignature)))
    bad('previousDigestSignature');
  if (!Array.isArray(o.objects)) bad('objects');
  for (const x of o.objects as unknown[]) {
    const e = x as Record<string, unknown>;
    if (
      !e ||
      !isStr(e.store) ||
      !isStr(e.key) ||
      !isStr(e.version) ||
      !Number.isSafeInteger(e.size) ||
      !(/^[0-9a-f]{64}$/.test(String(e.sha256)) && isStr(e.sha256))
    )
      bad('objects');
  }
  return o as unknown as Digest;
}

/** Whether `signature` (DER ECDSA) signs exactly `bytes` with `publicKey` (SHA-256). */
export function signatureValid(
  bytes: Uint8Array,
  signature: Uint8Array,
  publicKey: KeyObject | string,
): boolean {
  try {
    const key = typeof publicKey === 'string' ? createPublicKey(publicKey) : publicKey;
    return verifySignature('sha256', bytes, { key, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}

/** Lower-case hex of bytes. */
export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * The hour an object belongs to: the hour of its store-reported creation time; `undefined`
 * when the store reported none or it does not parse.
 */
export function objectHour(created: string | undefined): number | undefined {
  if (created === undefined) return undefined;
  const ms = Date.parse(created);
  return Number.isNaN(ms) ? undefined : hourOf(ms);
}

/**
 * The start of the last hour whose digest is due at `now`: an hour is due once it has ended
 * and `delayMs` more have passed (late deliveries land in it first).
 */
export function lastDueHour(now: number, delayMs: number): number {
  return hourOf(now - delayMs) - HOUR_MS;
}
