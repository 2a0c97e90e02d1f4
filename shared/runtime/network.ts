/**
 * The one classifier of "could not talk to the endpoint" failures. Node, undici, the AWS SDK,
 * the Azure pipeline and grpc-js each report a refused connection, a failed DNS lookup, a
 * rejected TLS certificate, a timeout or a reset differently (an error `code`, a `cause`
 * chain, or only words in a message); and an endpoint that answers an HTML page (a typo'd
 * host behind a proxy, a captive portal, a web server on the port) surfaces as a JSON parse
 * error such as `Unexpected token '<'`. {@link unreachable} maps all of them to one
 * {@link EndpointUnreachableError}: `cannot reach <service> at <endpoint>: <reason>`.
 *
 * Adapters call it once, where the foreign error enters (their own error wrapping), and fall
 * back to their usual `CloudApiError` when it returns `undefined`.
 */
import { EndpointUnreachableError, type UnreachableReason } from './errors.ts';

const CODE_REASONS: Record<string, UnreachableReason> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'dns lookup failed',
  EAI_AGAIN: 'dns lookup failed',
  EAI_NONAME: 'dns lookup failed',
  ETIMEDOUT: 'timed out',
  ESOCKETTIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'timed out',
  ECONNRESET: 'connection reset',
  UND_ERR_SOCKET: 'connection reset',
  EPIPE: 'connection reset',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'tls certificate rejected',
  SELF_SIGNED_CERT_IN_CHAIN: 'tls certificate rejected',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'tls certificate rejected',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'tls certificate rejected',
  UNABLE_TO_GET_ISSUER_CERT: 'tls certificate rejected',
  CERT_HAS_EXPIRED: 'tls certificate rejected',
  CERT_NOT_YET_VALID: 'tls certificate rejected',
  ERR_TLS_CERT_ALTNAME_INVALID: 'tls certificate rejected',
};

/** Words some clients leave only in the message (grpc-js `details`, wrapped SDK errors). */
const MESSAGE_REASONS: [RegExp, UnreachableReason][] = [
  [/\bECONNREFUSED\b/, 'connection refused'],
  [/\b(?:ENOTFOUND|EAI_AGAIN|EAI_NONAME)\b|Name resolution failed|getaddrinfo/i, 'dns lookup failed'],
  [
    /\b(?:DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(?:_LOCALLY)?|CERT_HAS_EXPIRED|ERR_TLS_CERT_ALTNAME_INVALID)\b|self[- ]signed certificate|unable to verify the first certificate|certificate has expired|Hostname\/IP does not match certificate/i,
    'tls certificate rejected',
  ],
  [/\bETIMEDOUT\b/, 'timed out'],
  [/\bECONNRESET\b|socket hang up/i, 'connection reset'],
];

/** A JSON/XML parser choked on markup: the answer was an HTML page. */
const HTML_ANSWER = /Unexpected token '?<'?|<!DOCTYPE html|<html[\s>]/i;

interface ErrorLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  details?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** The error, its `cause` chain and the members of an AggregateError (undici's happy eyeballs), at most 8 deep. */
function chain(error: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const queue: unknown[] = [error];
  while (queue.length > 0 && out.length < 8) {
    const e = queue.shift();
    if (!e || typeof e !== 'object' || out.includes(e as ErrorLike)) continue;
    const like = e as ErrorLike;
    out.push(like);
    queue.push(like.cause);
    if (Array.isArray(like.errors)) queue.push(...like.errors);
  }
  return out;
}

/** Why `error` says the endpoint was not reached, or `undefined` when it is some other failure. */
export function unreachableReason(error: unknown): UnreachableReason | undefined {
  const links = chain(error);
  for (const e of links) {
    const reason = typeof e.code === 'string' ? CODE_REASONS[e.code] : undefined;
    if (reason) return reason;
  }
  for (const e of links) {
    const text = [e.message, e.details].filter((t) => typeof t === 'string').join(' ');
    for (const [pattern, reason] of MESSAGE_REASONS) if (pattern.test(text)) return reason;
    const parseError = e.name === 'SyntaxError' || e.code === 'PARSE_ERROR';
    if (parseError && HTML_ANSWER.test(text)) return 'answered an html page, not the api';
  }
  return undefined;
}

/** The host (and port) a Node socket error names (`hostname` of a DNS error, `address:port` of a refusal). */
export function hostFromError(error: unknown): string | undefined {
  for (const e of chain(error) as { hostname?: unknown; address?: unknown; port?: unknown }[]) {
    if (typeof e.hostname === 'string' && e.hostname) return e.hostname;
    if (typeof e.address === 'string' && e.address) {
      const host = e.address.includes(':') ? `[${e.address}]` : e.address;
      return typeof e.port === 'number' ? `${host}:${e.port}` : host;
    }
  }
  return undefined;
}

/**
 * `scheme://host[:port][/path]` of a URL, without user info, query or fragment (never a secret).
 * A gRPC `host:port` (no scheme) is kept as it is, without any user info.
 */
export function safeEndpoint(url: string): string {
  if (!url.includes('://')) return url.replace(/^[^@/]*@/, '').split(/[?#/]/)[0] ?? url;
  try {
    const u = new URL(url);
    const path = u.pathname === '/' ? '' : u.pathname;
    return `${u.protocol}//${u.host}${path}`;
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//').split(/[?#]/)[0] ?? url;
  }
}

/** Whether a response's content type is a web page (`text/html`, `application/xhtml+xml`). */
export function isHtmlContentType(contentType: string | null | undefined): boolean {
  return typeof contentType === 'string' && /^\s*(?:text\/html|application\/xhtml\+xml)\b/i.test(contentType);
}

/**
 * An {@link EndpointUnreachableError} for `error` when it is a network, DNS, TLS or HTML-answer
 * failure against `endpoint` (a URL or host; user info and query are dropped), else `undefined`.
 * `contentType`, the content type of the answer when the caller saw one, makes any failure of a
 * web page's answer an HTML answer (whatever the client made of the page).
 */
export function unreachable(
  error: unknown,
  where: {
    cloud: string;
    operation: string;
    service: string;
    endpoint: string;
    status?: number | undefined;
    contentType?: string | null | undefined;
  },
): EndpointUnreachableError | undefined {
  if (error instanceof EndpointUnreachableError) return error;
  const { contentType, ...details } = where;
  const reason = isHtmlContentType(contentType)
    ? 'answered an html page, not the api'
    : unreachableReason(error);
  if (!reason) return undefined;
  return new EndpointUnreachableError(
    { ...details, endpoint: safeEndpoint(where.endpoint), reason },
    { cause: error },
  );
}
