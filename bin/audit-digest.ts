/**
 * `fleetward audit digest` and the digest part of `fleetward audit verify`: the signed hourly
 * digests (shared/jobs/audit-digest.ts). `bin/audit.ts` dispatches to {@link runDigest} and adds
 * {@link renderDigestVerify} to its verify output; both parse the same options.
 */

import { publicKeyFingerprint } from '../shared/audit/digest.ts';
import { localKeyFingerprint } from '../shared/audit/local-signer.ts';
import type { FleetConfig } from '../shared/config/schema.ts';
import {
  DIGEST_JOB,
  type DigestResult,
  type DigestVerifyResult,
  digest,
  verifyDigests,
} from '../shared/jobs/audit-digest.ts';
import type { Cluster } from '../shared/model.ts';
import type { Log } from '../shared/ports.ts';
import { digestJobDeps } from '../shared/runtime/deps/audit-digest.ts';
import { errorInfo } from '../shared/runtime/errors.ts';
import { wrapHanging } from '../shared/runtime/table.ts';
import { ensureInventory } from './inventory.ts';
import { notifyAfter } from './notify.ts';
import { EXIT, summaryLine } from './output.ts';

export const DIGEST_HELP = `'digest' writes each cluster's signed hourly digests up to the last due hour (an hour is due
jurisdictions.<j>.audit.digestDelayMinutes after it ends): one digest per UTC hour, empty hours
included, listing every archived object of the hour (key, version, size, SHA-256) and the
previous digest's signature, signed with the jurisdiction's KMS key (audit.digestKey), stored
write-once under digests/ in the evidence bucket beside the public key. With --local-evidence and
no digestKey, a local key file (.fleetward/keys/<jurisdiction>.pem) signs: not compliant.`;

/** The options `runDigest` reads (those of `fleetward audit`). */
export interface DigestValues {
  cluster?: string | undefined;
  jurisdiction?: string | undefined;
  'local-evidence'?: boolean | undefined;
  json?: boolean | undefined;
  notify?: boolean | undefined;
}

/** One line per cluster (wrapped to 120 columns): `written     <cluster id>: 3 digest(s), head 2026-11-21T11:00Z`. */
export function renderDigest(result: DigestResult): string {
  return result.outcomes
    .flatMap((o) => {
      const head = `${o.status.padEnd(11)} ${o.clusterId}: `;
      if (o.status === 'skipped') return wrapHanging(head, o.findings.map((f) => f.message).join('; '), 12);
      if (o.status === 'failed')
        return wrapHanging(head, `${o.error.message} (${o.written} written before the failure)`, 12);
      const adopted = o.adopted > 0 ? `, ${o.adopted} adopted from an interrupted run` : '';
      const where = o.compliant ? '' : ' [local key or storage, not compliant]';
      return wrapHanging(head, `${o.written} digest(s)${adopted}, last hour ${o.head ?? 'none'}${where}`, 12);
    })
    .join('\n');
}

/** The counts of a digest run, in the words of its summary line. */
export function digestCounts(result: DigestResult): Record<string, number> {
  const n = (s: DigestResult['outcomes'][number]['status']) =>
    result.outcomes.filter((o) => o.status === s).length;
  return { written: n('written'), 'up to date': n('up-to-date'), skipped: n('skipped'), failed: n('failed') };
}

/**
 * The digest part of `audit verify`: per cluster one line, then one line per problem
 * (`  missing-digest 2026-11-21T11:00:00.000Z digests/<cluster>/2026/11/21/11.json: ...`).
 */
export function renderDigestVerify(result: DigestVerifyResult): string {
  const lines: string[] = [];
  for (const c of result.clusters) {
    const d = c.digests;
    const range = d.from ? `${d.hours} digest(s), ${d.from} to ${d.to}` : '';
    switch (d.status) {
      case 'intact':
        lines.push(...wrapHanging(`digests intact      ${c.clusterId}: `, range, 20));
        break;
      case 'broken':
        lines.push(
          ...wrapHanging(
            `digests BROKEN      ${c.clusterId}: `,
            `${d.problems.length} problem(s); ${range}`,
            20,
          ),
        );
        for (const p of d.problems) {
          lines.push(...wrapHanging(`  ${p.problem} `, `${p.hour ?? '(no hour)'} ${p.key}: ${p.detail}`, 4));
        }
        break;
      case 'unverified':
        lines.push(
          ...wrapHanging(
            `digests UNVERIFIED  ${c.clusterId}: `,
            `the evidence store could not be read (${d.error?.message ?? 'unknown error'})`,
            20,
          ),
        );
        break;
      default:
        lines.push(...wrapHanging(`digests none        ${c.clusterId}: `, d.reason ?? 'no digest yet', 20));
    }
  }
  return lines.join('\n');
}

/** The counts of the digest verification, in the words of a summary line. */
export function digestVerifyCounts(result: DigestVerifyResult): Record<string, number> {
  const n = result.counts;
  return {
    'digests intact': n.intact,
    'digests broken': n.broken,
    'digests unverified': n.unverified,
    'no digests': n.none,
  };
}

/**
 * `fleetward audit digest`: writes the due digests, prints them (or JSON) with a summary line,
 * and answers the exit code (1 when a cluster was skipped or failed).
 */
export async function runDigest(config: FleetConfig, logger: Log, values: DigestValues): Promise<number> {
  const deps = await digestJobDeps(config, logger, { localEvidence: values['local-evidence'] === true });
  try {
    await ensureInventory(config, deps.store, logger);
    const result = await digest(deps, { clusterId: values.cluster, jurisdiction: values.jurisdiction });
    const notified = await notifyAfter(
      values.notify,
      { config, store: deps.store, logger },
      { job: DIGEST_JOB, runId: result.runId },
    );
    const code =
      !notified || result.outcomes.some((o) => o.status === 'skipped' || o.status === 'failed')
        ? EXIT.failed
        : EXIT.ok;
    console.log(
      values.json
        ? JSON.stringify(result, null, 2)
        : `${renderDigest(result)}\n${summaryLine(digestCounts(result), code)}`,
    );
    return code;
  } finally {
    deps.close();
    await deps.store.close();
  }
}

/**
 * The digest verification `audit verify` adds: every cluster's chain. A digest of a jurisdiction
 * whose KMS key (or, with `--local-evidence`, existing local key file) can be read is forged when
 * signed by any other key; only a jurisdiction without either accepts any key published beside
 * its digests (and a verify run never creates a local key file).
 */
export async function runDigestVerify(
  config: FleetConfig,
  logger: Log,
  values: DigestValues,
): Promise<DigestVerifyResult> {
  // Only KMS keys are asked for their public key below: no local key file is ever created here.
  const deps = await digestJobDeps(config, logger, { localEvidence: values['local-evidence'] === true });
  try {
    // The key each jurisdiction signs with: its KMS key, else (local runs) its existing local key
    // file. Only a jurisdiction with neither (or whose KMS key cannot be read) accepts any key
    // published beside its digests, which proves integrity, not authorship.
    const trusted: Record<string, string[]> = {};
    for (const [jurisdiction, j] of Object.entries(config.jurisdictions)) {
      if (!j.audit.digestKey) {
        const local = values['local-evidence'] === true ? await localKeyFingerprint(jurisdiction) : undefined;
        if (local !== undefined) trusted[jurisdiction] = [local];
        continue;
      }
      try {
        const signer = await deps.signers.for({ jurisdiction } as Cluster);
        trusted[jurisdiction] = [publicKeyFingerprint(await signer.publicKeyPem())];
      } catch (error) {
        logger.warn('Digest key not readable: any published key is accepted', {
          jurisdiction,
          error: errorInfo(error),
        });
      }
    }
    return await verifyDigests(deps, {
      clusterId: values.cluster,
      jurisdiction: values.jurisdiction,
      trustedKeys: trusted,
    });
  } finally {
    deps.close();
    await deps.store.close();
  }
}
