/**
 * Kubernetes API access to discovered clusters (the `KubeAccess` port). `connect` asks
 * the cluster's cloud where its API server is and how to mint a token for it, then
 * returns a `KubeApi` (see `api.ts`).
 *
 * Each cloud's part lives in `shared/clouds/<cloud>/kube.ts` and is imported on first
 * use, so a bundle that only reaches EKS clusters never loads the Google or Azure SDKs.
 * `kubeAccess.overrides` replaces a cluster's endpoint (and CA) by id; the cloud is then
 * asked only for tokens. One limiter (`kubeAccess.concurrency`) is shared by every call
 * of every cluster connected through one `KubeAccess`.
 */
import { readFileSync } from 'node:fs';
import type { AdapterContext } from '../clouds/context.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { CloudId, Cluster } from '../model.ts';
import type { Clock, KubeAccess, KubeApi, Log } from '../ports.ts';
import { createLimiter } from '../runtime/concurrency.ts';
import { ConfigError } from '../runtime/errors.ts';
import { createKubeApi } from './api.ts';

/** Where a cluster's API server is and how to get a bearer token for it. */
export interface KubeEndpoint {
  /** `https://…` of the API server (a path prefix is kept). */
  server: string;
  /** PEM of the CA that signed the server's certificate; absent: Node's trusted roots. */
  ca?: string | undefined;
  /** Name the server certificate is checked against, when it is not the server's host. */
  tlsServerName?: string | undefined;
  /** Only when a kubeconfig explicitly asks for it. */
  insecureSkipTlsVerify?: boolean | undefined;
  /** The current token (a provider may hand out a cached one while it is fresh). */
  token(): Promise<string>;
  /** A newly minted token, after the server refused the current one. */
  refresh(): Promise<string>;
}

/** A configured replacement of a cluster's endpoint. */
export interface KubeOverride {
  endpoint: string;
  /** PEM of `caFile`. */
  ca?: string | undefined;
}

/** One cloud's part of Kubernetes access. */
export interface KubeEndpointSource {
  /**
   * The endpoint and token functions for a cluster of this cloud. With an override, the
   * cloud is not asked for the endpoint or CA. Rejects with a `CloudApiError` when the
   * cloud cannot say, a `ConfigError` when the config lacks what the cluster needs.
   */
  endpoint(
    cluster: Cluster,
    options: { override?: KubeOverride; signal?: AbortSignal },
  ): Promise<KubeEndpoint>;
}

/** What a cloud's part gets besides the config. */
export interface KubeSourceContext extends AdapterContext {
  /** The time tokens are signed at and aged by (default the system clock). */
  clock?: Clock | undefined;
}

/** What each `shared/clouds/<cloud>/kube.ts` exports. */
export type KubeSourceFactory = (config: FleetConfig, ctx: KubeSourceContext) => KubeEndpointSource;

const LOADERS: Record<CloudId, () => Promise<{ createKubeSource: KubeSourceFactory }>> = {
  aws: () => import('../clouds/aws/kube.ts'),
  gcp: () => import('../clouds/gcp/kube.ts'),
  azure: () => import('../clouds/azure/kube.ts'),
  kubeconfig: () => import('../clouds/kubeconfig/kube.ts'),
};

export interface KubeAccessOptions {
  /** Retry backoff base of every call (default 200 ms); tests shorten it. */
  baseDelayMs?: number;
}

export function createKubeAccess(
  config: FleetConfig,
  ctx: { logger: Log; clock?: Clock },
  options: KubeAccessOptions = {},
): KubeAccess {
  const settings = config.kubeAccess;
  const limiter = createLimiter(settings.concurrency);
  const sources = new Map<CloudId, Promise<KubeEndpointSource>>();
  const cas = new Map<string, string>();

  const sourceOf = (cloud: CloudId): Promise<KubeEndpointSource> => {
    let source = sources.get(cloud);
    if (!source) {
      const loader = LOADERS[cloud];
      if (!loader)
        throw new ConfigError([{ path: 'clouds', message: `no kubernetes access for cloud "${cloud}"` }]);
      source = loader().then((m) => m.createKubeSource(config, ctx));
      // A failed load (a bad config) is tried again on the next connect.
      source.catch(() => sources.delete(cloud));
      sources.set(cloud, source);
    }
    return source;
  };

  const overrideOf = (cluster: Cluster): KubeOverride | undefined => {
    const index = settings.overrides.findIndex((o) => o.cluster === cluster.id);
    if (index < 0) return undefined;
    const override = settings.overrides[index]!;
    if (override.caFile === undefined) return { endpoint: override.endpoint };
    let ca = cas.get(override.caFile);
    if (ca === undefined) {
      try {
        ca = readFileSync(override.caFile, 'utf8');
      } catch (error) {
        throw new ConfigError(
          [
            {
              path: `kubeAccess.overrides.${index}.caFile`,
              message: `cannot read ${override.caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
            },
          ],
          undefined,
          { cause: error },
        );
      }
      cas.set(override.caFile, ca);
    }
    return { endpoint: override.endpoint, ca };
  };

  return {
    async connect(cluster: Cluster, connectOptions: { signal?: AbortSignal } = {}): Promise<KubeApi> {
      const { signal } = connectOptions;
      signal?.throwIfAborted();
      const override = overrideOf(cluster);
      const source = await sourceOf(cluster.cloud);
      const endpoint = await source.endpoint(cluster, {
        ...(override ? { override } : {}),
        ...(signal ? { signal } : {}),
      });
      ctx.logger.debug('Kube API connected', {
        cluster: cluster.id,
        cloud: cluster.cloud,
        via: override ? 'override' : 'cloud',
      });
      return createKubeApi({
        server: endpoint.server,
        ca: endpoint.ca,
        tlsServerName: endpoint.tlsServerName,
        insecureSkipTlsVerify: endpoint.insecureSkipTlsVerify,
        token: () => endpoint.token(),
        refresh: () => endpoint.refresh(),
        timeoutMs: settings.timeoutMs,
        maxAttempts: settings.maxAttempts,
        limiter,
        signal,
        cluster: cluster.id,
        logger: ctx.logger,
        baseDelayMs: options.baseDelayMs,
      });
    },
  };
}
