/**
 * Retry with exponential backoff and full jitter, honouring a server's Retry-After.
 * AWS SDK clients use their own standard retry strategy (configured in the adapter);
 * this helper serves the clients that do not (gRPC, plain fetch).
 */
export interface RetryDecision {
  retry: boolean;
  /** Server-requested wait (Retry-After), in milliseconds. */
  afterMs?: number | undefined;
}

export interface RetryOptions {
  /** Total attempts including the first (default 4). */
  maxAttempts?: number;
  /** Base of the exponential backoff (default 100 ms). */
  baseDelayMs?: number;
  /** Cap of one wait (default 20 s); a longer Retry-After is capped too. */
  maxDelayMs?: number;
  signal?: AbortSignal | undefined;
  /** Injected for tests: returns [0, 1). */
  random?: () => number;
  /** Injected for tests. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Called before each wait. */
  onRetry?: (info: { attempt: number; delayMs: number; error: unknown }) => void;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}

/** Parses a Retry-After header (delta-seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** The wait before attempt `attempt + 1`: full jitter over the exponential step, or the server's hint. */
export function backoffDelay(
  attempt: number,
  decision: RetryDecision,
  options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'random'> = {},
): number {
  const base = options.baseDelayMs ?? 100;
  const cap = options.maxDelayMs ?? 20_000;
  const random = options.random ?? Math.random;
  const jittered = Math.floor(random() * Math.min(cap, base * 2 ** attempt));
  if (decision.afterMs !== undefined) return Math.min(cap, Math.max(decision.afterMs, jittered));
  return jittered;
}

/** Runs `fn` until it succeeds, `classify` says not to retry, or attempts run out. */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  classify: (error: unknown) => RetryDecision,
  options: RetryOptions = {},
): Promise<T> {
  const maxAttempts = options.maxAttempts ?? 4;
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (options.signal?.aborted) throw error;
      const decision = classify(error);
      if (!decision.retry || attempt >= maxAttempts) throw error;
      const delayMs = backoffDelay(attempt, decision, options);
      options.onRetry?.({ attempt, delayMs, error });
      await wait(delayMs, options.signal);
    }
  }
}
