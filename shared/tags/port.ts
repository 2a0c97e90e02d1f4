/**
 * The port the tag job writes through. Jobs never import a cloud SDK: they see this
 * interface, and `shared/clouds/<cloud>/tags.ts` implement it (EKS tags, GKE resource
 * labels, AKS resource tags). Kubeconfig clusters have no cloud resource to tag.
 */
import type { Cluster, RegionCloud } from '../model.ts';

/** Reads and merges tags (labels on GKE) of one cloud's clusters. */
export interface ClusterTagger {
  /** The cloud this tagger covers. */
  readonly cloud: RegionCloud;
  /**
   * The cluster's tags as the cloud holds them now (a fresh read, never the inventory).
   * Rejects with a `CloudApiError` when the cluster cannot be read.
   */
  read(cluster: Cluster, options?: { signal?: AbortSignal }): Promise<Record<string, string>>;
  /**
   * Sets or overwrites exactly the keys of `changes` and keeps every other tag of the
   * cluster: EKS `TagResource` (additive by nature), GKE read-merge-`SetLabels` guarded by
   * the label fingerprint (re-read and retried once when another writer got there first),
   * AKS read-merge-`updateTags` with `If-Match` on the eTag read (ARM replaces the whole set,
   * so the merge is ours, and atomic: re-read and retried once on 412). Empty
   * `changes` (or changes already in place) make no write call. Rejects with a
   * `CloudApiError` when the write fails.
   */
  write(cluster: Cluster, changes: Record<string, string>, options?: { signal?: AbortSignal }): Promise<void>;
  /** Releases clients, channels and sockets. */
  close(): Promise<void>;
}

/** The taggers of a run, one per configured cloud, created on first use. */
export interface TaggerSet {
  /** The tagger of a cloud, or `undefined` when the cloud is not configured or has no taggable resource (kubeconfig). */
  for(cloud: Cluster['cloud']): Promise<ClusterTagger | undefined>;
  /** Closes every tagger created so far. */
  close(): Promise<void>;
}
