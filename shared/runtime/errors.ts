/**
 * One root error for everything Fleetward raises on purpose. Subclasses end in
 * `Error`, set `name`, keep messages lower-case and put data in properties.
 * Foreign errors (SDKs, network) are wrapped once, where they enter, with `cause`.
 */
export class FleetwardError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FleetwardError';
  }
}

/** One issue found while validating configuration: the dotted path of the bad field and why. */
export interface ConfigIssue {
  path: string;
  message: string;
}

/** The configuration is invalid; `issues` names every bad field. */
export class ConfigError extends FleetwardError {
  readonly issues: ConfigIssue[];
  readonly file: string | undefined;
  constructor(issues: ConfigIssue[], file?: string, options?: { cause?: unknown }) {
    super(`invalid configuration${file ? ` in ${file}` : ''}: ${issues.length} issue(s)`, options);
    this.name = 'ConfigError';
    this.issues = issues;
    this.file = file;
  }
}

/** A write would put cluster data outside the cluster's jurisdiction. */
export class ResidencyError extends FleetwardError {
  readonly jurisdiction: string;
  readonly targetRegion: string;
  readonly targetCountry: string | undefined;
  constructor(
    message: string,
    details: { jurisdiction: string; targetRegion: string; targetCountry?: string | undefined },
  ) {
    super(message);
    this.name = 'ResidencyError';
    this.jurisdiction = details.jurisdiction;
    this.targetRegion = details.targetRegion;
    this.targetCountry = details.targetCountry;
  }
}

/** A cloud API call failed; `operation` and `retryable` say which and whether it may be retried. */
export class CloudApiError extends FleetwardError {
  readonly cloud: string;
  readonly operation: string;
  readonly status: number | undefined;
  readonly retryable: boolean;
  constructor(
    message: string,
    details: { cloud: string; operation: string; status?: number | undefined; retryable: boolean },
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CloudApiError';
    this.cloud = details.cloud;
    this.operation = details.operation;
    this.status = details.status;
    this.retryable = details.retryable;
  }
}

/** Why an endpoint could not be reached (see `shared/runtime/network.ts`). */
export type UnreachableReason =
  | 'connection refused'
  | 'dns lookup failed'
  | 'tls certificate rejected'
  | 'timed out'
  | 'connection reset'
  | 'answered an html page, not the api';

/**
 * A cloud endpoint could not be reached, or what answered is not the API (an HTML page):
 * `cannot reach <service> at <endpoint>: <reason>`. A `CloudApiError`, so callers that
 * retry or report cloud failures treat it as one.
 */
export class EndpointUnreachableError extends CloudApiError {
  readonly service: string;
  readonly endpoint: string;
  readonly reason: UnreachableReason;
  constructor(
    details: {
      cloud: string;
      operation: string;
      service: string;
      endpoint: string;
      reason: UnreachableReason;
      status?: number | undefined;
    },
    options?: { cause?: unknown },
  ) {
    super(
      `cannot reach ${details.service} at ${details.endpoint}: ${details.reason}`,
      {
        cloud: details.cloud,
        operation: details.operation,
        status: details.status,
        retryable: details.reason === 'timed out' || details.reason === 'connection reset',
      },
      options,
    );
    this.name = 'EndpointUnreachableError';
    this.service = details.service;
    this.endpoint = details.endpoint;
    this.reason = details.reason;
  }
}

/** A cloud returned a cluster payload we cannot turn into a `Cluster` record. */
export class UnparseableClusterError extends FleetwardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UnparseableClusterError';
  }
}

/** A plain, serialisable view of any error, safe to log and to return in results. */
export interface ErrorInfo {
  name: string;
  message: string;
  status?: number;
}

export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof CloudApiError) {
    return error.status === undefined
      ? { name: error.name, message: error.message }
      : { name: error.name, message: error.message, status: error.status };
  }
  if (error instanceof Error) return { name: error.name, message: error.message };
  return { name: 'Error', message: String(error) };
}

/** A conditional create found the key taken: nothing was written. */
export class ObjectExistsError extends FleetwardError {
  readonly key: string;
  constructor(key: string, options?: { cause?: unknown }) {
    super(`object ${key} already exists`, options);
    this.name = 'ObjectExistsError';
    this.key = key;
  }
}

/** An evidence bucket is not write-once (or keeps objects too briefly): nothing is written there. */
export class NotImmutableError extends FleetwardError {
  readonly store: string;
  constructor(message: string, store: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NotImmutableError';
    this.store = store;
  }
}

/** The command line was wrong (exit 2); the message says what and how to fix it. */
export class UsageError extends FleetwardError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UsageError';
  }
}
