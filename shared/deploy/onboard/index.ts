/**
 * The `fleetward onboard` targets: each a pure generator of ready-to-apply artefacts from the
 * permission table (shared/clouds/grants.ts), the function catalogue (shared/deploy/functions.ts),
 * fleet.yaml and the command's options.
 */
import { onboardAws } from './aws.ts';
import { onboardAzure } from './azure.ts';
import type { Generator } from './common.ts';
import { evidenceGenerator } from './evidence.ts';
import { onboardGcp } from './gcp.ts';
import { onboardKubernetes } from './kubernetes.ts';

export { onboardAws } from './aws.ts';
export { onboardAzure } from './azure.ts';
export * from './common.ts';
export { onboardEvidence } from './evidence.ts';
export { onboardGcp } from './gcp.ts';
export { onboardKubernetes } from './kubernetes.ts';

/** Every target, by the name the command line uses. */
export const TARGETS: Readonly<Record<string, { generate: Generator; summary: string }>> = {
  aws: {
    generate: onboardAws,
    summary: 'CloudFormation template (StackSet-ready) of the reader role in every member account',
  },
  gcp: {
    generate: onboardGcp,
    summary:
      'custom role YAML; gcloud script for the Workload Identity Pool, AWS provider, service account, bindings',
  },
  azure: {
    generate: onboardAzure,
    summary: 'custom role definition JSON, federated identity credentials, az script for the assignments',
  },
  kubernetes: {
    generate: onboardKubernetes,
    summary: 'ClusterRole/Role and bindings for group fleetward; EKS access entries',
  },
  evidence: {
    generate: evidenceGenerator,
    summary:
      'write-once buckets per jurisdiction: S3 Object Lock, locked GCS bucket, immutable Azure container',
  },
};
