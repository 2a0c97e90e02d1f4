/**
 * What the sandbox's Azure Monitor delivers in AKS export mode, against a recorded `kube-audit`
 * resource-log record (test/fixtures/azure/README.md): the same record fields, the resource id
 * in upper case under which the exporter looks for the cluster's blobs, and the audit Event as a
 * JSON string in `properties.log`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { azureExportPrefix } from '../../shared/audit/export-layout.ts';
import { managedClusterId } from '../sandbox/arm-fake.ts';
import { aksDiagnosticLine } from '../sandbox/audit-fleet.ts';

interface DiagnosticRecord {
  time: string;
  resourceId: string;
  category: string;
  operationName: string;
  properties: { log: string; stream: string; pod: string };
}

const recorded = JSON.parse(
  readFileSync(new URL('../fixtures/azure/aks-kube-audit-record.json', import.meta.url), 'utf8'),
) as DiagnosticRecord;

/** The fields Azure Monitor's resource-log schema and the AKS log event schema name. */
const SCHEMA = ['time', 'resourceId', 'category', 'operationName', 'properties'] as const;
const PROPERTIES = ['log', 'stream', 'pod'] as const;

const clusterId = managedClusterId('0b1f6471-1bf0-4dda-aec3-111122223333', 'rg-aks', 'aks-eu-1');
const AT = new Date('2026-12-08T10:17:03.000Z');
const delivered = JSON.parse(aksDiagnosticLine(clusterId, 'kube-audit-admin', AT, 0)) as DiagnosticRecord;

describe('AKS export delivery (contract)', () => {
  it('writes the fields of the recorded record, with the same kinds of values', () => {
    for (const field of SCHEMA) {
      expect(Object.keys(recorded)).toContain(field);
      expect(typeof delivered[field]).toBe(typeof recorded[field]);
    }
    for (const field of PROPERTIES) {
      expect(Object.keys(recorded.properties)).toContain(field);
      expect(typeof delivered.properties[field]).toBe('string');
    }
    expect(delivered.operationName).toBe(recorded.operationName);
    expect(['stdout', 'stderr']).toContain(delivered.properties.stream);
    expect(delivered.properties.pod).toMatch(/^kube-apiserver-/);
    expect(delivered.time).toBe(AT.toISOString());
  });

  it('names the cluster in upper case, as the prefix the exporter lists under', () => {
    expect(recorded.resourceId).toBe(recorded.resourceId.toUpperCase());
    expect(recorded.resourceId).toMatch(
      /^\/SUBSCRIPTIONS\/[^/]+\/RESOURCEGROUPS\/[^/]+\/PROVIDERS\/MICROSOFT\.CONTAINERSERVICE\/MANAGEDCLUSTERS\/[^/]+$/,
    );
    expect(delivered.resourceId).toBe(clusterId.toUpperCase());
    expect(`resourceId=${delivered.resourceId}/`).toBe(azureExportPrefix(clusterId));
    expect(`resourceId=${recorded.resourceId}/`).toBe(azureExportPrefix(recorded.resourceId.toLowerCase()));
  });

  it('carries the audit Event as a JSON string, as the recorded record does', () => {
    for (const record of [recorded, delivered]) {
      const event = JSON.parse(record.properties.log) as DiagnosticRecord & { [k: string]: unknown };
      expect(event).toMatchObject({ kind: 'Event', apiVersion: 'audit.k8s.io/v1' });
      expect(typeof event.auditID).toBe('string');
      expect(typeof event.stage).toBe('string');
      expect(typeof event.verb).toBe('string');
      expect(typeof event.requestURI).toBe('string');
    }
  });

  it('tells a record of another category apart', () => {
    expect(recorded.category).toBe('kube-audit');
    expect(delivered.category).toBe('kube-audit-admin');
    expect(JSON.parse(aksDiagnosticLine(clusterId, 'kube-audit', AT, 1)).category).toBe('kube-audit');
  });
});
