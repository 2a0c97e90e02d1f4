/**
 * Writes kubeconfig files for the sandbox: one cluster, user and context per entry,
 * the first context current. Servers must be loopback addresses.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'yaml';
import { assertLoopback } from './net.ts';

export interface KubeconfigEntry {
  context: string;
  /** Cluster name; entries may share a cluster (same server). */
  cluster: string;
  server: string;
  /** PEM file of the CA (`certificate-authority`). */
  caFile?: string;
  /** PEM of the CA, written base64-encoded as `certificate-authority-data`. */
  ca?: string;
  token: string;
  namespace?: string;
}

/** Writes a valid kubeconfig (apiVersion v1, kind Config) to `file`, mode 0600. */
export function writeKubeconfig(file: string, entries: KubeconfigEntry[]): void {
  if (entries.length === 0) throw new Error('a kubeconfig needs at least one context');
  const clusters = new Map<string, Record<string, string>>();
  for (const e of entries) {
    assertLoopback(e.server);
    const cluster: Record<string, string> = { server: e.server };
    if (e.ca !== undefined) cluster['certificate-authority-data'] = Buffer.from(e.ca).toString('base64');
    else if (e.caFile !== undefined) cluster['certificate-authority'] = e.caFile;
    const seen = clusters.get(e.cluster);
    if (seen && JSON.stringify(seen) !== JSON.stringify(cluster)) {
      throw new Error(`cluster "${e.cluster}" is given two different servers or CAs`);
    }
    clusters.set(e.cluster, cluster);
  }
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: [...clusters].map(([name, cluster]) => ({ name, cluster })),
    users: entries.map((e) => ({ name: `${e.context}-user`, user: { token: e.token } })),
    contexts: entries.map((e) => ({
      name: e.context,
      context: {
        cluster: e.cluster,
        user: `${e.context}-user`,
        ...(e.namespace === undefined ? {} : { namespace: e.namespace }),
      },
    })),
    'current-context': entries[0]!.context,
  };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, stringify(doc), { mode: 0o600 });
}
