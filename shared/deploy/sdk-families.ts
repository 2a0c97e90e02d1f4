/**
 * The cloud SDK packages each capability calls, as data: a function's bundle may carry the SDKs
 * of its capabilities (shared/deploy/functions.ts) and the packages those SDKs depend on, and no
 * other cloud SDK (issue 13, "no bundle contains a cloud SDK that its function never calls").
 * Each row names the packages the adapters serving that capability import; the providers'
 * permissions of the same capability (shared/clouds/grants.ts) name the same services.
 * test/meta/bundles.test.ts and `npm run bench -- coldstart` check every function against it.
 *
 * Only deploy-time tools and tests import this module, never a Lambda handler.
 */
import type { Capability } from '../clouds/permissions.ts';
import { allCapabilities, type FunctionSpec } from './functions.ts';

/** npm packages that talk to a cloud or a cluster; a bundle's packages matching one are checked. */
export const CLOUD_SDK_PACKAGES: readonly RegExp[] = [
  /^@aws-sdk\/(client-|lib-)/,
  /^@aws-sdk\/credential-providers$/,
  /^@google-cloud\//,
  /^@googleapis\//,
  /^google-auth-library$/,
  /^google-gax$/,
  /^@grpc\//,
  /^@azure\//,
  /^@azure-rest\//,
  /^@kubernetes\//,
];

/** Whether `pkg` is a cloud SDK package (see {@link CLOUD_SDK_PACKAGES}). */
export function isCloudSdk(pkg: string): boolean {
  return CLOUD_SDK_PACKAGES.some((r) => r.test(pkg));
}

// Reaching a member account: STS AssumeRole sessions, from the shared config's profile when set.
const AWS_SESSIONS = ['@aws-sdk/client-sts', '@aws-sdk/credential-providers'] as const;
// Evidence buckets on the three clouds: objects, and the Azure storage account's immutability policy.
const EVIDENCE = [
  '@aws-sdk/client-s3',
  '@google-cloud/storage',
  '@azure/storage-blob',
  '@azure/arm-storage',
] as const;

/** The cloud SDK packages the adapters of each capability import (their dependencies come with them). */
export const SDK_FAMILIES: Readonly<Record<Capability, readonly string[]>> = {
  config: ['@aws-sdk/client-appconfigdata'],
  state: ['@aws-sdk/client-dynamodb', '@aws-sdk/lib-dynamodb'],
  secrets: ['@aws-sdk/client-ssm', '@aws-sdk/client-secrets-manager'],
  'queue-send': ['@aws-sdk/client-sqs'],
  // Web identity tokens for GCP WIF and Azure federation; the caller's account of bucket ownership checks.
  identity: [...AWS_SESSIONS, 'google-auth-library', '@azure/identity'],
  // EKS (regions from EC2), GKE, AKS; kubeconfig clusters are probed through the Kubernetes API.
  discovery: [
    ...AWS_SESSIONS,
    '@aws-sdk/client-eks',
    '@aws-sdk/client-ec2',
    '@google-cloud/container',
    '@azure/arm-containerservice',
    '@kubernetes/client-node',
  ],
  // Cloud Resource Manager over REST, signed by the Google auth client.
  'project-directory': ['google-auth-library'],
  tags: [...AWS_SESSIONS, '@aws-sdk/client-eks', '@google-cloud/container', '@azure/arm-containerservice'],
  budgets: [
    ...AWS_SESSIONS,
    '@aws-sdk/client-budgets',
    '@google-cloud/billing-budgets',
    '@azure/arm-consumption',
  ],
  // The Kubernetes client and each cloud's token: EKS (presigned STS), GKE (Google auth), AKS (credentials or AAD).
  kube: [
    ...AWS_SESSIONS,
    '@kubernetes/client-node',
    '@aws-sdk/client-eks',
    '@google-cloud/container',
    'google-auth-library',
    '@azure/arm-containerservice',
    '@azure/identity',
  ],
  // Velero resources in the cluster, and the region of each backup storage location's bucket.
  velero: ['@kubernetes/client-node', '@aws-sdk/client-s3', '@google-cloud/storage', '@azure/arm-storage'],
  // CloudWatch Logs (the cluster's log group from EKS), Cloud Logging, Log Analytics.
  'audit-read': [
    ...AWS_SESSIONS,
    '@aws-sdk/client-cloudwatch-logs',
    '@aws-sdk/client-eks',
    '@google-cloud/logging',
    'google-auth-library',
    '@azure/monitor-query-logs',
  ],
  // Export paths as desired state: CloudWatch Logs subscription filters and Firehose; Log Router
  // sinks over REST with the Google auth client; Azure diagnostic settings; and the destination checks.
  'audit-export': [
    ...AWS_SESSIONS,
    '@aws-sdk/client-cloudwatch-logs',
    '@aws-sdk/client-firehose',
    'google-auth-library',
    ...EVIDENCE,
  ],
  'evidence-read': EVIDENCE,
  'evidence-write': EVIDENCE,
  // The jurisdiction's KMS key signs the hourly audit digests.
  'digest-sign': ['@aws-sdk/client-kms'],
};

/** The cloud SDK packages a function's capabilities call (its bundle may carry these and their dependencies). */
export function sdkFamiliesOf(spec: Pick<FunctionSpec, 'capabilities' | 'regionalCapabilities'>): string[] {
  return [...new Set(allCapabilities(spec).flatMap((c) => SDK_FAMILIES[c]))].sort();
}
