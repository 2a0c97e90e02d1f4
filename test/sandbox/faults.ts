import { callOf } from './request-log.ts';

/**
 * Fault and latency injection shared by every local cloud, plus the request log
 * benchmarks and tests read (calls by operation, which scope, how long).
 */

/** What a fake does instead of answering normally. */
export type Fault =
  /** HTTP 429 (gRPC RESOURCE_EXHAUSTED); `retryAfterSeconds` adds a Retry-After header. */
  | { kind: 'throttle'; retryAfterSeconds?: number }
  /** An HTTP 5xx (gRPC UNAVAILABLE/INTERNAL). */
  | { kind: 'error'; status: number }
  /** Accept the request and never answer (the client's timeout must fire). */
  | { kind: 'timeout' }
  /** Answer 200 with a truncated or invalid body. */
  | { kind: 'malformed' }
  /**
   * Refuse the call as a missing permission does, in the provider's shape: AWS 403
   * `AccessDenied` / `AccessDeniedException`, GCP 403 `PERMISSION_DENIED` (gRPC code 7), Azure
   * 403 `AuthorizationFailed`, Kubernetes 403 `Forbidden`. See {@link FaultInjector.deny}.
   */
  | { kind: 'deny'; message?: string };

/** Which requests a fault applies to; every given field must match. */
export interface FaultRule {
  cloud?: RequestInfo['cloud'];
  operation?: string;
  /** The provider call (test/sandbox/request-log.ts naming: `eks:ListClusters`, `list velero.io/backups`). */
  call?: string;
  scope?: string;
  region?: string;
  fault: Fault;
  /** How many matching requests it affects before it expires (default: all). */
  times?: number;
}

export interface RequestInfo {
  cloud: 'aws' | 'gcp' | 'azure' | 'kube' | 'slack';
  /** API operation as the cloud names it (`DescribeCluster`, `ListClusters`, `managedClusters.list`). */
  operation: string;
  /** The API the operation belongs to, when the fake knows it (AWS signing name `eks`, `blob`). */
  service?: string;
  /** Account, project or subscription, when the request names one. */
  scope?: string;
  region?: string;
  /** Milliseconds since the epoch when the request arrived. */
  at?: number;
  /** Time the request took, including injected latency. */
  durationMs?: number;
  status?: number;
  fault?: Fault['kind'];
}

/** Decides, per request, the injected latency and whether a fault replaces the answer. */
export class FaultInjector {
  latencyMs: number;
  private rules: { rule: FaultRule; left: number }[] = [];

  constructor(options: { latencyMs?: number } = {}) {
    this.latencyMs = options.latencyMs ?? 0;
  }

  /** Adds a rule; the oldest matching rule wins. */
  add(rule: FaultRule): this {
    this.rules.push({ rule, left: rule.times ?? Number.POSITIVE_INFINITY });
    return this;
  }

  clear(): void {
    this.rules = [];
  }

  /**
   * Denies one provider call from now on, as a role without its permission would be refused
   * (`eks:ListClusters`, `logging:entries.list`, `create velero.io/backups`); returns a remover.
   */
  deny(call: string): () => void {
    const entry = {
      rule: { call, fault: { kind: 'deny' } } satisfies FaultRule,
      left: Number.POSITIVE_INFINITY,
    };
    this.rules.unshift(entry);
    return () => {
      this.rules = this.rules.filter((e) => e !== entry);
    };
  }

  /** The fault for this request, if any (consumes one use of the rule). */
  take(req: RequestInfo): Fault | undefined {
    for (const entry of this.rules) {
      const { rule } = entry;
      if (entry.left <= 0) continue;
      if (rule.cloud && rule.cloud !== req.cloud) continue;
      if (rule.operation && rule.operation !== req.operation) continue;
      if (rule.call && callOf(req)?.call !== rule.call) continue;
      if (rule.scope && rule.scope !== req.scope) continue;
      if (rule.region && rule.region !== req.region) continue;
      entry.left--;
      return rule.fault;
    }
    return undefined;
  }

  /** Whether a `deny` rule refuses this request (no other rule is consulted or consumed). */
  denies(req: RequestInfo): boolean {
    return this.rules.some(
      (e) => e.left > 0 && e.rule.fault.kind === 'deny' && e.rule.call === callOf(req)?.call,
    );
  }

  /** Waits the injected latency (abortable, so stopping a fake never hangs). */
  delay(signal?: AbortSignal): Promise<void> {
    if (this.latencyMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, this.latencyMs);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

/** Every request a fake saw, in arrival order. */
export class RequestLog {
  readonly entries: RequestInfo[] = [];

  record(info: RequestInfo): void {
    this.entries.push(info);
  }

  clear(): void {
    this.entries.length = 0;
  }

  /** Requests per `<cloud>:<operation>`. */
  countsByOperation(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const e of this.entries) {
      const k = `${e.cloud}:${e.operation}`;
      counts[k] = (counts[k] ?? 0) + 1;
    }
    return counts;
  }

  count(cloud: RequestInfo['cloud'], operation?: string): number {
    return this.entries.filter((e) => e.cloud === cloud && (!operation || e.operation === operation)).length;
  }
}

/** Minimal response surface the HTTP fakes answer faults on (node:http's ServerResponse fits). */
interface FaultResponse {
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  end(body?: string): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** The `timeout` fault: keep the request open, unanswered, until the client gives up or the fake stops. */
export function holdResponse<R extends FaultResponse>(res: R, held: Set<R>): void {
  held.add(res);
  res.once('close', () => held.delete(res));
}

/** The `malformed` fault: a 200 whose JSON body is cut in half. */
export function sendTruncatedJson(
  res: FaultResponse,
  body: unknown,
  contentType = 'application/json; charset=utf-8',
): void {
  const text = JSON.stringify(body);
  const truncated = text.slice(0, Math.max(1, Math.floor(text.length / 2)));
  res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(truncated) });
  res.end(truncated);
}
