/**
 * A {@link DigestSigner} on a local key file, for `--local-evidence` runs only: an ECDSA P-256
 * private key at `.fleetward/keys/<jurisdiction>.pem`, created on first use (mode 0600).
 * Anyone who can read the file can sign, and its location is unknown to the residency guard,
 * so digests it signs say `compliant: false`. A deployed run signs with KMS (../clouds/aws/kms.ts).
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto';
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DigestSigner } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';
import { publicKeyFingerprint } from './digest.ts';

/** Where local digest keys live (one per jurisdiction). */
export const LOCAL_KEYS_DIR = join('.fleetward', 'keys');

/** A signer whose key is a local file: never compliant. */
export interface LocalDigestSigner extends DigestSigner {
  readonly compliantKey: false;
  /** The key file. */
  readonly path: string;
}

/** Reads the key file, creating it first when absent (a new P-256 key, 0600, never replaced). */
async function loadOrCreateKey(path: string, dir: string): Promise<KeyObject> {
  try {
    return createPrivateKey(await readFile(path, 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new FleetwardError(`cannot read the local digest key ${path}`, { cause: error });
    }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // Written whole under another name, then linked: a concurrent first use never reads half a
  // key, and the link fails rather than replace a key another run created meanwhile.
  const tmp = join(dir, `.${randomUUID()}.tmp`);
  await writeFile(tmp, pem, { mode: 0o600, flag: 'wx' });
  try {
    await link(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    await rm(tmp, { force: true });
  }
  return createPrivateKey(await readFile(path, 'utf8'));
}

/**
 * The local signer of `jurisdiction`: its key under `dir` (default {@link LOCAL_KEYS_DIR}).
 * `keyId` is `local:<fingerprint>`; `location()` is `null` (the guard cannot place a file).
 */
export async function createLocalDigestSigner(
  jurisdiction: string,
  options: { dir?: string | undefined } = {},
): Promise<LocalDigestSigner> {
  if (!/^[A-Za-z0-9_-]+$/.test(jurisdiction)) {
    throw new FleetwardError(`invalid jurisdiction id "${jurisdiction}" for a key file name`);
  }
  const dir = options.dir ?? LOCAL_KEYS_DIR;
  const path = join(dir, `${jurisdiction}.pem`);
  const key = await loadOrCreateKey(path, dir);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new FleetwardError(`local digest key ${path} is not an ECDSA P-256 key`);
  }
  const pem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
  return {
    keyId: `local:${publicKeyFingerprint(pem)}`,
    algorithm: 'ECDSA_SHA_256',
    compliantKey: false,
    path,
    async location() {
      return null;
    },
    async sign(message, opts = {}) {
      opts.signal?.throwIfAborted();
      return new Uint8Array(sign('sha256', message, { key, dsaEncoding: 'der' }));
    },
    async publicKeyPem() {
      return pem;
    },
  };
}

/**
 * The fingerprint of `jurisdiction`'s local key, when its file exists (never creates one): what a
 * verification may trust for digests signed locally.
 */
export async function localKeyFingerprint(
  jurisdiction: string,
  options: { dir?: string | undefined } = {},
): Promise<string | undefined> {
  if (!/^[A-Za-z0-9_-]+$/.test(jurisdiction)) return undefined;
  let text: string;
  try {
    text = await readFile(join(options.dir ?? LOCAL_KEYS_DIR, `${jurisdiction}.pem`), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FleetwardError(`cannot read the local digest key of ${jurisdiction}`, { cause: error });
  }
  const pem = createPublicKey(createPrivateKey(text)).export({ type: 'spki', format: 'pem' }).toString();
  return publicKeyFingerprint(pem);
}
