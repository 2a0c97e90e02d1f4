/**
 * Which GKE versions a provider security bulletin affects. A bulletin names the minor versions
 * it affects (`affectedSupportedMinors`) and, per minor, the first patched version
 * (`patchedVersions`); a version is affected when it is in an affected minor and below that
 * minor's patched version (or its minor has no patched version yet). The security-bulletin job
 * uses these rules to record findings, and the `lifecycle.security-bulletins` control to
 * re-check a recorded finding against the cluster's current version.
 */
import type { BulletinFacts } from '../state/records.ts';

/** `1.22.6-gke.600` -> `[1, 22, 6, 600]`; undefined when it is not a version. */
function parts(version: string): number[] | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-gke\.(\d+))?/.exec(version.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0), Number(m[4] ?? 0)];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Whether a version string can be read as a GKE version (`1.22.6-gke.600`, `1.22.6`, `1.22`). */
export function isReadableVersion(version: string): boolean {
  return parts(version) !== undefined;
}

/** The bulletin's patched version of the minor `version` is in, when it names one. */
export function patchedVersionFor(
  version: string,
  bulletin: Pick<BulletinFacts, 'patchedVersions'>,
): string | undefined {
  const v = parts(version);
  if (!v) return undefined;
  return bulletin.patchedVersions.find((p) => {
    const q = parts(p);
    return q !== undefined && q[0] === v[0] && q[1] === v[1];
  });
}

/**
 * Whether a GKE version is affected by the bulletin (see the module comment); a version that
 * cannot be read is not (see {@link isReadableVersion}).
 */
export function isAffected(
  version: string,
  bulletin: Pick<BulletinFacts, 'affectedSupportedMinors' | 'patchedVersions'>,
): boolean {
  const v = parts(version);
  if (!v) return false;
  const minor = `${v[0]}.${v[1]}`;
  if (!bulletin.affectedSupportedMinors.includes(minor)) return false;
  const patched = bulletin.patchedVersions
    .map(parts)
    .filter((p): p is number[] => p !== undefined && p[0] === v[0] && p[1] === v[1]);
  return !patched.some((p) => compare(v, p) >= 0);
}
