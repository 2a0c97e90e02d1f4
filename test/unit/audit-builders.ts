/** The cluster the audit tests archive: one EKS cluster in the EU, audit logging on. */
import type { Cluster } from '../../shared/model.ts';

export const auditCluster: Cluster = {
  id: 'aws/111111111111/eu-central-1/payments',
  cloud: 'aws',
  scope: '111111111111',
  region: 'eu-central-1',
  name: 'payments',
  kubernetesVersion: '1.32',
  endpoint: null,
  endpointAccess: 'private',
  secretsEncryptionKey: null,
  auditLogging: true,
  tags: {},
  status: 'running',
  providerStatus: 'ACTIVE',
  createdAt: null,
  country: 'DE',
  jurisdiction: 'eu',
};
