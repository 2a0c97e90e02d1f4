/**
 * The AKS exporter's reading of a diagnostic setting, on the REST reference's example answer
 * (test/fixtures/azure/README.md), and the ARM fake's answer against the same shape.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from '../../shared/clouds/azure/arm.ts';
import { armJson } from '../../shared/clouds/azure/arm-rest.ts';
import { toObserved } from '../../shared/clouds/azure/audit-export.ts';
import { type ArmFake, aksCluster, managedClusterId, startArmFake } from '../sandbox/arm-fake.ts';

const sample = JSON.parse(
  readFileSync(new URL('../fixtures/azure/diagnostic-setting.json', import.meta.url), 'utf8'),
) as { name: string; type: string; properties: Record<string, unknown> };

const SUB = '00000000-0000-4000-8000-00000000a001';
let arm: ArmFake;

beforeAll(async () => {
  arm = await startArmFake({ token: 'contract-token' });
  arm.setClusters(SUB, [aksCluster({ subscriptionId: SUB, resourceGroup: 'rg-app', name: 'aks-1' })]);
});

afterAll(async () => {
  await arm?.stop();
});

describe('AKS export: diagnostic settings (contract)', () => {
  it('reads the reference example: enabled categories, storage account, no delivery errors', () => {
    expect(toObserved(sample, 'fallback')).toEqual({
      name: 'mysetting',
      enabled: true,
      destination:
        '/subscriptions/df602c9c-7aa0-407d-a6fb-eb20c8bd1192/resourceGroups/apptest/providers/Microsoft.Storage/storageAccounts/appteststorage1',
      filter: 'WorkflowRuntime',
      settings: {},
      deliveryErrors: [],
    });
  });

  it('reads a setting whose categories are all off as not enabled', () => {
    const off = structuredClone(sample) as unknown as {
      name: string;
      properties: { logs: { enabled: boolean }[] };
    };
    for (const l of off.properties.logs) l.enabled = false;
    expect(toObserved(off, 'x')).toMatchObject({ enabled: false, filter: '' });
  });

  it('answers PUT and GET of one setting with the fields of the reference example', async () => {
    const id = managedClusterId(SUB, 'rg-app', 'aks-1');
    const path = `${id}/providers/Microsoft.Insights/diagnosticSettings/fleetward-audit?api-version=2021-05-01-preview`;
    const connection: Connection = {
      endpoint: arm.endpoint,
      origin: new URL(arm.endpoint).origin,
      ca: [arm.ca],
      scope: 'x',
    };
    const body = {
      properties: {
        storageAccountId: sample.properties.storageAccountId,
        logs: [{ category: 'kube-audit-admin', enabled: true }],
      },
    };
    await armJson(connection, 'contract-token', path, 5_000, undefined, {
      method: 'PUT',
      body,
    });
    const got = (await armJson(connection, 'contract-token', path, 5_000, undefined)) as {
      name: string;
      type: string;
      properties: Record<string, unknown>;
    };
    expect(got.type).toBe(sample.type);
    expect(got.name).toBe('fleetward-audit');
    for (const field of ['storageAccountId', 'logs', 'metrics', 'logAnalyticsDestinationType']) {
      expect(Object.keys(got.properties)).toContain(field);
    }
    expect(toObserved(got, 'fleetward-audit')).toMatchObject({
      enabled: true,
      filter: 'kube-audit-admin',
      destination: sample.properties.storageAccountId,
    });
  });
});
