/**
 * An ArchiveStore on a local directory, for development, tests and air-gapped trials.
 *
 * It is write-once as far as this process goes (a create never replaces a file), but it is
 * NOT compliant storage: anyone with file access can change or delete objects, and nothing
 * enforces retention. So `assertImmutable` passes (there is nothing to check), the store
 * reports `compliantStorage: false` (manifests record it), and `location()` is `null`.
 * A file's version is the SHA-256 of its current bytes, so a changed file shows up as a
 * different version.
 */
import { randomUUID } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { link, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ArchivedObject, ArchiveStore } from '../ports.ts';
import { FleetwardError, ObjectExistsError } from '../runtime/errors.ts';
import { sha256Hex } from './chunks.ts';

/** Where in-flight writes are staged (never listed). */
const STAGING = '.staging';

export class LocalArchiveStore implements ArchiveStore {
  readonly id: string;
  /** A local directory is never compliant (write-once) storage. */
  readonly compliantStorage = false;
  readonly #root: string;

  constructor(dir: string) {
    this.#root = resolve(dir);
    this.id = `local:${dir}`;
  }

  async location(): Promise<null> {
    return null;
  }

  /** Passes: a local directory has no retention to check (see `compliantStorage`). */
  async assertImmutable(_retentionDays: number): Promise<void> {}

  #path(key: string): string {
    const bad =
      key.length === 0 ||
      key.startsWith('/') ||
      key.includes('\\') ||
      key.includes('\0') ||
      key.split('/').some((s) => s === '' || s === '.' || s === '..' || s === STAGING);
    if (bad) throw new FleetwardError(`invalid object key "${key}"`);
    return join(this.#root, ...key.split('/'));
  }

  /**
   * Writes the bytes to a staging file, then hard-links it to the key: the link fails when
   * the key exists (never overwrites) and a reader never sees a half-written object.
   */
  async create(
    key: string,
    body: Uint8Array,
    meta: { sha256: string; contentType: string },
  ): Promise<ArchivedObject> {
    const path = this.#path(key);
    const version = sha256Hex(body);
    if (version !== meta.sha256) throw new FleetwardError(`checksum mismatch for ${key}`);
    const staging = join(this.#root, STAGING);
    await mkdir(staging, { recursive: true });
    await mkdir(dirname(path), { recursive: true });
    const tmp = join(staging, randomUUID());
    await writeFile(tmp, body, { flag: 'wx' });
    try {
      await link(tmp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST')
        throw new ObjectExistsError(key, { cause: error });
      throw error;
    } finally {
      await rm(tmp, { force: true });
    }
    return { key, version };
  }

  async get(key: string, options: { version?: string } = {}): Promise<Uint8Array | undefined> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.#path(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    if (options.version !== undefined && sha256Hex(bytes) !== options.version) return undefined;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Every file under `prefix`. `created` is the file's modification time: a file this store
   * wrote is never modified, so that is when it was created (and a file changed behind the
   * store's back moves to the hour it was changed, beside its new version).
   */
  async list(prefix: string): Promise<{ key: string; versions: string[]; created: string }[]> {
    const out: { key: string; versions: string[]; created: string }[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const entry of entries) {
        const key = rel ? `${rel}/${entry.name}` : entry.name;
        if (!rel && entry.name === STAGING) continue;
        if (entry.isDirectory()) {
          if (prefix.startsWith(`${key}/`) || key.startsWith(prefix) || `${key}/`.startsWith(prefix)) {
            await walk(join(dir, entry.name), key);
          }
        } else if (entry.isFile() && key.startsWith(prefix)) {
          const path = join(dir, entry.name);
          const [bytes, info] = await Promise.all([readFile(path), stat(path)]);
          out.push({ key, versions: [sha256Hex(bytes)], created: info.mtime.toISOString() });
        }
      }
    };
    await walk(this.#root, '');
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }
}
