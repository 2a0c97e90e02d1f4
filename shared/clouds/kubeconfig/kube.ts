/**
 * Kubernetes access to clusters named by kubeconfig contexts: the context's cluster
 * (server, CA, `tls-server-name`, `insecure-skip-tls-verify`) and the bearer token its
 * user gives, through `@kubernetes/client-node` (a static `token`, a `tokenFile`, or the
 * exec and auth-provider plugins the client supports). A refusal loads the file again,
 * so a rotated token or a fresh exec credential is picked up. Users that authenticate
 * with client certificates or basic auth are not supported.
 */
import { readFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import type { FleetConfig, KubeconfigSource } from '../../config/schema.ts';
import type { KubeEndpoint, KubeEndpointSource } from '../../kube/access.ts';
import type { Cluster } from '../../model.ts';
import { ConfigError, FleetwardError } from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';

function sourceOf(config: FleetConfig, cluster: Cluster): KubeconfigSource {
  const source = config.clouds.kubeconfig?.find((s) => s.alias === cluster.scope);
  if (!source) {
    throw new ConfigError([
      {
        path: 'clouds.kubeconfig',
        message: `cluster ${cluster.id} comes from kubeconfig "${cluster.scope}", which is not configured`,
      },
    ]);
  }
  return source;
}

/** Loads the file with `context` current; errors name the alias and context, never the contents. */
function load(source: KubeconfigSource, context: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(source.file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | null)?.code;
    throw new FleetwardError(`cannot load kubeconfig "${source.alias}"${code ? `: ${code}` : ''}`, {
      cause: error,
    });
  }
  if (!kc.getContextObject(context)) {
    throw new FleetwardError(`context "${context}" is not in kubeconfig "${source.alias}"`);
  }
  kc.setCurrentContext(context);
  return kc;
}

/** The bearer token the current user gives (running its exec plugin if it has one). */
async function bearerOf(kc: KubeConfig, alias: string, context: string): Promise<string> {
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  const headers = (options.headers ?? {}) as Record<string, unknown>;
  const authorization = headers.Authorization ?? headers.authorization;
  const token = typeof authorization === 'string' ? /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] : undefined;
  if (!token) {
    throw new FleetwardError(
      `the user of context "${context}" in kubeconfig "${alias}" gives no bearer token (client certificates and basic auth are not supported)`,
    );
  }
  return token;
}

export function createKubeSource(config: FleetConfig, _ctx: AdapterContext): KubeEndpointSource {
  return {
    async endpoint(cluster, { override }): Promise<KubeEndpoint> {
      const source = sourceOf(config, cluster);
      const context = cluster.name;
      let kc = load(source, context);
      const target = kc.getCurrentCluster();
      if (!target) {
        throw new FleetwardError(
          `context "${context}" in kubeconfig "${source.alias}" names a cluster the file does not define`,
        );
      }
      let ca: string | undefined;
      if (target.caData) ca = Buffer.from(target.caData, 'base64').toString('utf8');
      else if (target.caFile) {
        try {
          ca = readFileSync(target.caFile, 'utf8');
        } catch (error) {
          throw new FleetwardError(
            `cannot read the CA file of context "${context}" in kubeconfig "${source.alias}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
            { cause: error },
          );
        }
      }
      return {
        server: override?.endpoint ?? target.server,
        ca: override ? override.ca : ca,
        ...(override
          ? {}
          : { tlsServerName: target.tlsServerName, insecureSkipTlsVerify: target.skipTLSVerify }),
        token: () => bearerOf(kc, source.alias, context),
        refresh: () => {
          kc = load(source, context);
          return bearerOf(kc, source.alias, context);
        },
      };
    },
  };
}
