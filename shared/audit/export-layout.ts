/**
 * Where each cloud's own export writes a cluster's audit log in the evidence storage (export
 * mode). One place for both sides: the exporters set the export up to write there, and the
 * hourly digests list what is there — without loading an exporter's SDKs.
 */

/** EKS: the Firehose stream's S3 prefix in the evidence bucket (Firehose adds `YYYY/MM/DD/HH/`). */
export function awsExportPrefix(clusterId: string): string {
  return `audit-export/${clusterId}/`;
}

/**
 * GKE: a Log Router sink writes `<log id>/YYYY/MM/DD/<hh:mm:ss>_<hh:mm:ss>_S<n>.json` at the
 * bucket's root and takes no prefix, so the audit logs' folder is all that tells them apart
 * (every GKE cluster of the jurisdiction shares it; see shared/clouds/gcp/audit-export.ts).
 */
export const GCS_EXPORT_PREFIX = 'cloudaudit.googleapis.com/';

/** AKS: the container Azure Monitor writes a diagnostic log category into, in the storage account. */
export function azureExportContainer(category: string): string {
  return `insights-logs-${category}`;
}

/**
 * AKS: the blob prefix of one cluster in that container. Azure Monitor writes
 * `resourceId=<ARM id in upper case>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`, one append blob per
 * hour, appended to as the hour goes on.
 */
export function azureExportPrefix(clusterResourceId: string): string {
  return `resourceId=${clusterResourceId.toUpperCase()}/`;
}
