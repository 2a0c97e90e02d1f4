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
