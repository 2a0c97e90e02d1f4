/**
 * What the plain-`fetch` Google REST calls share (Cloud Logging reads and sinks): the failure
 * kept for classification, the retry decision, and the message of Google's JSON error body.
 */
import type { RetryDecision } from '../../runtime/retry.ts';

export const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
]);

/** An HTTP answer that was not a success, kept for classification before it is wrapped. */
export class HttpStatusError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, message: string, retryAfterMs: number | undefined) {
    super(message);
    this.name = 'HttpStatusError';
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Whether a fetch failure (status, network, deadline) is worth another attempt. */
export function classifyFetch(error: unknown): RetryDecision {
  if (error instanceof HttpStatusError) {
    const retry = error.status === 408 || error.status === 429 || error.status >= 500;
    return { retry, afterMs: error.retryAfterMs };
  }
  if (error instanceof SyntaxError) return { retry: true }; // a cut-off body
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'TimeoutError') return { retry: true };
  const cause = (error as { cause?: { code?: unknown } } | null)?.cause;
  const code = cause?.code ?? (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && RETRYABLE_NETWORK_CODES.has(code)) return { retry: true };
  return { retry: error instanceof TypeError && error.message === 'fetch failed' };
}

/** The message of Google's JSON error body, else the status text. */
export function googleErrorMessage(text: string, fallback: string): string {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    if (typeof message === 'string' && message !== '') return message;
  } catch {
    // not JSON
  }
  return fallback;
}
