/**
 * What the GCP gRPC adapters (GKE, Billing Budgets) share: gRPC status codes and their HTTP
 * equivalents, retry classification, per-call options, errors wrapped once, and the client
 * options of a config. Apart from discovery, so an adapter that needs these never bundles the
 * GKE client (`@google-cloud/container`) unless it calls GKE.
 */
import { type CallOptions, type ClientOptions, grpc } from 'google-gax';
import type { GcpConfig } from '../../config/schema.ts';
import { CloudApiError, ConfigError, type EndpointUnreachableError } from '../../runtime/errors.ts';
import { unreachable } from '../../runtime/network.ts';
import type { RetryDecision } from '../../runtime/retry.ts';
import { isLoopback } from './auth.ts';
import { googleAuthOptions } from './federation.ts';

const CLOUD = 'gcp';
const OPERATION = 'ListClusters';
const DEFAULT_PORT = 443;
/** The service named in `cannot reach gke at <endpoint>: …`. */
const SERVICE = 'gke';
/** Where the client goes without a configured endpoint. */
export const DEFAULT_ENDPOINT = 'container.googleapis.com:443';

// --- gRPC status codes (google/rpc/code.proto) ---

const CODE = {
  CANCELLED: 1,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** gRPC code → the HTTP status the same error has on the REST surface (google/rpc/code.proto). */
export const HTTP_STATUS_OF_CODE: Record<number, number> = {
  0: 200, // OK
  1: 499, // CANCELLED
  2: 500, // UNKNOWN
  3: 400, // INVALID_ARGUMENT
  4: 504, // DEADLINE_EXCEEDED
  5: 404, // NOT_FOUND
  6: 409, // ALREADY_EXISTS
  7: 403, // PERMISSION_DENIED
  8: 429, // RESOURCE_EXHAUSTED
  9: 400, // FAILED_PRECONDITION
  10: 409, // ABORTED
  11: 400, // OUT_OF_RANGE
  12: 501, // UNIMPLEMENTED
  13: 500, // INTERNAL
  14: 503, // UNAVAILABLE
  15: 500, // DATA_LOSS
  16: 401, // UNAUTHENTICATED
};

const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  CODE.RESOURCE_EXHAUSTED,
  CODE.UNAVAILABLE,
  CODE.DEADLINE_EXCEEDED,
  CODE.INTERNAL,
]);

/** The gRPC status code of an error from gax / grpc-js, if it has one. */
export function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** A server-requested wait from a `google.rpc.RetryInfo` status detail, in milliseconds. */
function retryInfoDelayMs(error: unknown): number | undefined {
  const details = (error as { statusDetails?: unknown } | null)?.statusDetails;
  if (!Array.isArray(details)) return undefined;
  for (const detail of details) {
    const delay = (detail as { retryDelay?: { seconds?: unknown; nanos?: unknown } | null } | null)
      ?.retryDelay;
    if (!delay) continue;
    const seconds = Number(String(delay.seconds ?? 0));
    const nanos = Number(delay.nanos ?? 0);
    if (Number.isFinite(seconds) && Number.isFinite(nanos)) return Math.max(0, seconds * 1000 + nanos / 1e6);
  }
  return undefined;
}

/** Whether a gax / grpc-js error is worth another attempt, and the wait its RetryInfo asks for. */
export function classify(error: unknown): RetryDecision {
  const code = grpcCode(error);
  return { retry: code !== undefined && RETRYABLE_CODES.has(code), afterMs: retryInfoDelayMs(error) };
}

/**
 * Response metadata key under which {@link keepAnswerContentType} leaves the content type of an
 * answer that was not gRPC on the call's status.
 */
const ANSWER_CONTENT_TYPE = 'x-fleetward-answer-content-type';

/**
 * A grpc-js interceptor that keeps the content type of an answer that is not gRPC (a web
 * server's or a proxy's HTML page): grpc-js reports such an answer only as "Received HTTP status
 * code 404" and drops its headers, so the content type is copied onto the failed call's status
 * metadata, where {@link toCloudApiError} reads it.
 */
export const keepAnswerContentType: grpc.Interceptor = (options, nextCall) => {
  let contentType: string | undefined;
  return new grpc.InterceptingCall(nextCall(options), {
    start(metadata, _listener, next) {
      next(metadata, {
        onReceiveMetadata(received, next) {
          const value = received.get('content-type')[0];
          if (typeof value === 'string') contentType = value;
          next(received);
        },
        onReceiveStatus(status, next) {
          if (status.code !== grpc.status.OK && contentType && !/^application\/grpc/i.test(contentType)) {
            status.metadata.set(ANSWER_CONTENT_TYPE, contentType);
          }
          next(status);
        },
      });
    },
  });
};

/** Per-call options: no gax retries (ours count the attempts), one deadline per attempt, the interceptor above. */
export function callOptionsOf(timeoutMs: number, signal?: AbortSignal): CallOptions {
  // A fresh `options` object per call: gax writes the attempt's deadline into it.
  const callOptions: CallOptions = {
    retry: null,
    timeout: timeoutMs,
    otherArgs: { options: { interceptors: [keepAnswerContentType] } },
  };
  if (signal) callOptions.signal = signal;
  return callOptions;
}

/** The HTTP status and content type of an answer that was not gRPC, as {@link keepAnswerContentType} kept them. */
function nonGrpcAnswer(error: unknown): { status: number | undefined; contentType: string } | undefined {
  const metadata = (error as { metadata?: { get?: (key: string) => unknown[] } } | null)?.metadata;
  const contentType = typeof metadata?.get === 'function' ? metadata.get(ANSWER_CONTENT_TYPE)[0] : undefined;
  if (typeof contentType !== 'string') return undefined;
  const details = (error as { details?: unknown }).details;
  const status = /Received HTTP status code (\d{3})/.exec(typeof details === 'string' ? details : '')?.[1];
  return { status: status === undefined ? undefined : Number(status), contentType };
}

/**
 * Failures of the auth library's call credentials (fetching a token) reach us as gRPC statuses
 * too; their network errors are about the token endpoint, not the GKE endpoint.
 */
const CALL_CREDENTIALS_FAILURE = /Getting metadata from plugin failed/i;

/**
 * An {@link EndpointUnreachableError} when a gax / grpc-js error says `where.endpoint` was not
 * reached (refused, DNS, TLS, timeout, an HTML page instead of gRPC), else `undefined`. A failure
 * of the call credentials (fetching a token) is about the token endpoint and never classified.
 */
export function grpcUnreachable(
  error: unknown,
  where: { operation: string; service: string; endpoint: string },
): EndpointUnreachableError | undefined {
  const detail = error instanceof Error ? error.message : String(error);
  if (CALL_CREDENTIALS_FAILURE.test(detail)) return undefined;
  const answer = nonGrpcAnswer(error);
  return unreachable(error, {
    cloud: CLOUD,
    ...where,
    status: answer?.status,
    contentType: answer?.contentType,
  });
}

/**
 * Wraps a gax / grpc-js / auth error once, where it enters; `what` names the call (default: the
 * project's list). A refused connection, failed DNS lookup, rejected certificate, timeout or an
 * HTML page instead of gRPC becomes `cannot reach gke at <endpoint>: <reason>` (see
 * `shared/runtime/network.ts`), `endpoint` being the configured `host:port`.
 */
export function toCloudApiError(
  project: string,
  error: unknown,
  operation: string = OPERATION,
  what = `listing gke clusters of project ${project}`,
  endpoint: string = DEFAULT_ENDPOINT,
): CloudApiError {
  if (error instanceof CloudApiError) return error;
  const code = grpcCode(error);
  const detail = error instanceof Error ? error.message : String(error);
  const down = grpcUnreachable(error, { operation, service: SERVICE, endpoint });
  if (down) return down;
  return new CloudApiError(
    `${what} failed: ${detail}`,
    {
      cloud: CLOUD,
      operation,
      status: code === undefined ? undefined : HTTP_STATUS_OF_CODE[code],
      retryable: code !== undefined && RETRYABLE_CODES.has(code),
    },
    { cause: error },
  );
}

// --- client options ---

interface ParsedEndpoint {
  /** Host as gRPC wants it in an address (IPv6 keeps its brackets). */
  servicePath: string;
  /** Bare host name or address, for the loopback check. */
  hostname: string;
  port: number;
}

function endpointIssue(message: string): ConfigError {
  return new ConfigError([{ path: 'clouds.gcp.endpoint', message }]);
}

/** Splits `host:port` (`[::1]:port` for IPv6; the port defaults to 443). */
export function parseEndpoint(endpoint: string): ParsedEndpoint {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(endpoint.trim());
  if (!m) throw endpointIssue(`expected "host:port" like "container.googleapis.com:443", got "${endpoint}"`);
  const servicePath = m[1]!;
  const port = m[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (port < 1 || port > 65_535) throw endpointIssue(`port ${port} is out of range`);
  return { servicePath, hostname: servicePath.replace(/^\[|\]$/g, ''), port };
}

/** The GKE endpoint a config talks to, as `host:port`, for messages. */
export function endpointOfConfig(config: Pick<GcpConfig, 'endpoint'>): string {
  return config.endpoint?.trim() || DEFAULT_ENDPOINT;
}

/** The `ClusterManagerClient` options for a config; refuses `insecure` off loopback. */
export function clientOptions(config: GcpConfig): ClientOptions {
  const endpoint = config.endpoint === undefined ? undefined : parseEndpoint(config.endpoint);
  if (config.insecure) {
    if (!endpoint || !isLoopback(endpoint.hostname)) {
      throw new ConfigError([
        {
          path: 'clouds.gcp.insecure',
          message: 'insecure (plain-text gRPC without credentials) is allowed only with a loopback endpoint',
        },
      ]);
    }
    return {
      apiEndpoint: endpoint.servicePath,
      port: endpoint.port,
      // Insecure channel credentials: gax uses them as they are and adds no call credentials.
      sslCreds: grpc.credentials.createInsecure(),
      // Said explicitly so the auth library never looks for credentials to learn the universe domain.
      universeDomain: 'googleapis.com',
    };
  }
  const options: ClientOptions = {};
  if (endpoint) {
    options.apiEndpoint = endpoint.servicePath;
    options.port = endpoint.port;
  }
  Object.assign(options, googleAuthOptions(config));
  return options;
}
