/**
 * Plain HTTPS requests to Azure Resource Manager, for the few calls made without an SDK client
 * (diagnostic settings: read by the audit log source, written by the export mode's exporter):
 * one request, its JSON answer, and the retry decision of its failure.
 */
import { request as httpsRequest } from 'node:https';
import { FleetwardError } from '../../runtime/errors.ts';
import { isHtmlContentType } from '../../runtime/network.ts';
import { parseRetryAfter, type RetryDecision } from '../../runtime/retry.ts';
import { type Connection, classify } from './arm.ts';
import { clip } from './evidence.ts';

/** An HTTP failure of our own ARM GET, shaped for {@link classify}-like decisions. */
export class HttpStatusError extends Error {
  readonly status: number;
  readonly retryAfter: string | undefined;
  /** The answer's content type, when it was a web page (not ARM's JSON). */
  readonly contentType: string | undefined;
  constructor(status: number, body: string, retryAfter: string | undefined, contentType?: string) {
    super(`http ${status}: ${clip(body)}`);
    this.name = 'HttpStatusError';
    this.status = status;
    this.contentType = contentType;
    this.retryAfter = retryAfter;
  }
}

const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN']);

export function classifyAny(error: unknown): RetryDecision {
  if (error instanceof HttpStatusError) {
    const s = error.status;
    return {
      retry: s === 408 || s === 429 || (s >= 500 && s !== 501 && s !== 505),
      afterMs: parseRetryAfter(error.retryAfter),
    };
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return { retry: true };
  return classify(error);
}

/** One GET of ARM's JSON at `path` (under the connection's endpoint only). */
export function armGetJson(
  connection: Connection,
  token: string,
  path: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  return armJson(connection, token, path, timeoutMs, signal);
}

/**
 * One request of ARM's JSON at `path` (under the connection's endpoint only), `body` sent as
 * JSON; resolves the parsed answer, rejects with {@link HttpStatusError} on a status of 300 and
 * above or a web page, and on network errors as node does.
 */
export function armJson(
  connection: Connection,
  token: string,
  path: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  request: { method: 'GET' | 'PUT'; body?: unknown } = { method: 'GET' },
): Promise<unknown> {
  const url = new URL(`${connection.endpoint}${path}`);
  if (url.origin !== connection.origin)
    throw new FleetwardError('refusing a request outside the arm endpoint');
  const payload = request.body === undefined ? undefined : JSON.stringify(request.body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: request.method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
        },
        ...(connection.ca ? { ca: connection.ca } : {}),
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])]),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          const ra = res.headers['retry-after'];
          const contentType = res.headers['content-type'];
          // A web server's or proxy's page is not ARM's answer, whatever its status.
          if (isHtmlContentType(contentType)) {
            reject(new HttpStatusError(status, '', Array.isArray(ra) ? ra[0] : ra, contentType));
            return;
          }
          if (status >= 300) {
            reject(new HttpStatusError(status, text, Array.isArray(ra) ? ra[0] : ra));
            return;
          }
          try {
            resolve(JSON.parse(text) as unknown);
          } catch (error) {
            reject(new FleetwardError('arm answered a body that is not json', { cause: error }));
          }
        });
      },
    );
    req.on('error', (error: Error) => {
      if (error.name === 'TimeoutError' || (error.name === 'AbortError' && !signal?.aborted)) {
        const e = new HttpStatusError(408, `request timed out after ${timeoutMs} ms`, undefined);
        reject(e);
        return;
      }
      reject(error);
    });
    req.end(payload);
  });
}
