/**
 * The classifier of unreachable endpoints, on the shapes each client raises: Node/undici
 * errors with a `code` (also inside `cause` and AggregateError), grpc-js `details` that only
 * quote the socket error, the AWS SDK's JSON parse error of an HTML page. Other failures are
 * not network failures and stay with the adapter's own wrapping.
 */
import { describe, expect, it } from 'vitest';
import { EndpointUnreachableError } from '../../shared/runtime/errors.ts';
import { safeEndpoint, unreachable, unreachableReason } from '../../shared/runtime/network.ts';

const coded = (message: string, code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { code, ...extra });

type Case = [name: string, error: unknown, reason: string];

describe('unreachableReason', () => {
  it.each<Case>([
    ['a refused connection', coded('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED'), 'connection refused'],
    [
      'undici: fetch failed, the socket error as cause',
      new TypeError('fetch failed', { cause: coded('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED') }),
      'connection refused',
    ],
    [
      'undici happy eyeballs: an AggregateError of refusals',
      new TypeError('fetch failed', {
        cause: Object.assign(new AggregateError([coded('connect ECONNREFUSED ::1:9', 'ECONNREFUSED')]), {
          code: undefined,
        }),
      }),
      'connection refused',
    ],
    [
      'a region typo: no such host',
      coded('getaddrinfo ENOTFOUND eks.eu-wset-1.amazonaws.com', 'ENOTFOUND', {
        hostname: 'eks.eu-wset-1.amazonaws.com',
      }),
      'dns lookup failed',
    ],
    [
      'a resolver that did not answer',
      coded('getaddrinfo EAI_AGAIN example.invalid', 'EAI_AGAIN'),
      'dns lookup failed',
    ],
    ...(
      [
        'DEPTH_ZERO_SELF_SIGNED_CERT',
        'SELF_SIGNED_CERT_IN_CHAIN',
        'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
        'ERR_TLS_CERT_ALTNAME_INVALID',
      ] as const
    ).map((code): Case => [`tls ${code}`, coded('certificate problem', code), 'tls certificate rejected']),
    ['a timeout', coded('connect ETIMEDOUT 10.0.0.1:443', 'ETIMEDOUT'), 'timed out'],
    ['a reset', coded('read ECONNRESET', 'ECONNRESET'), 'connection reset'],
    [
      'grpc-js: the socket error only in details',
      Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
        code: 14,
        details: 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:9',
      }),
      'connection refused',
    ],
    [
      'grpc-js: name resolution',
      Object.assign(
        new Error('14 UNAVAILABLE: Name resolution failed for target dns:container.example.invalid:443'),
        {
          code: 14,
        },
      ),
      'dns lookup failed',
    ],
    [
      'aws sdk: the JSON parse error of an HTML page',
      Object.assign(new SyntaxError(`Unexpected token '<', "<!DOCTYPE "... is not valid JSON`), {
        $metadata: { httpStatusCode: 404 },
      }),
      'answered an html page, not the api',
    ],
    [
      'azure pipeline: PARSE_ERROR of an HTML body',
      Object.assign(
        new Error('Error "Unexpected token \'<\'" occurred while parsing the response body - <html>'),
        {
          name: 'RestError',
          code: 'PARSE_ERROR',
        },
      ),
      'answered an html page, not the api',
    ],
  ])('%s', (_name, error, reason) => {
    expect(unreachableReason(error)).toBe(reason);
  });

  it.each([
    [
      'an access denial',
      Object.assign(new Error('User is not authorized'), { name: 'AccessDeniedException' }),
    ],
    ['a JSON syntax error that is not markup', new SyntaxError('Unexpected end of JSON input')],
    ['a grpc permission error', Object.assign(new Error('7 PERMISSION_DENIED: denied'), { code: 7 })],
    ['not an error', 'boom'],
  ])('%s is not an unreachable endpoint', (_name, error) => {
    expect(unreachableReason(error)).toBeUndefined();
  });
});

describe('unreachable', () => {
  it('says which service at which endpoint, keeps the cause, and drops user info and query', () => {
    const cause = coded('connect ECONNREFUSED 127.0.0.1:9', 'ECONNREFUSED');
    const error = unreachable(cause, {
      cloud: 'gcp',
      operation: 'entries.list',
      service: 'cloud logging',
      endpoint: 'http://user:secret@127.0.0.1:9/v2?key=abc',
    });
    expect(error).toBeInstanceOf(EndpointUnreachableError);
    expect(error?.message).toBe('cannot reach cloud logging at http://127.0.0.1:9/v2: connection refused');
    expect(error).toMatchObject({ service: 'cloud logging', reason: 'connection refused', retryable: false });
    expect(error?.cause).toBe(cause);
  });

  it('marks timeouts and resets retryable, refusals and certificates not', () => {
    const where = {
      cloud: 'aws',
      operation: 'ListClusters',
      service: 'eks',
      endpoint: 'https://eks.example',
    };
    expect(unreachable(coded('x', 'ETIMEDOUT'), where)?.retryable).toBe(true);
    expect(unreachable(coded('x', 'ECONNRESET'), where)?.retryable).toBe(true);
    expect(unreachable(coded('x', 'DEPTH_ZERO_SELF_SIGNED_CERT'), where)?.retryable).toBe(false);
  });

  it('safeEndpoint keeps scheme, host, port and path only', () => {
    expect(safeEndpoint('https://a:b@host.example:8443/base/?sig=1#x')).toBe(
      'https://host.example:8443/base/',
    );
    expect(safeEndpoint('https://host.example')).toBe('https://host.example');
  });

  it('safeEndpoint leaves a gRPC host:port as it is', () => {
    expect(safeEndpoint('localhost:8443')).toBe('localhost:8443');
    expect(safeEndpoint('container.googleapis.com:443')).toBe('container.googleapis.com:443');
    expect(safeEndpoint('[::1]:8443')).toBe('[::1]:8443');
  });

  it('an answer whose content type is a web page is "answered an html page", whatever the error', () => {
    const where = {
      cloud: 'azure',
      operation: 'managedClusters.list',
      service: 'arm',
      endpoint: 'https://arm',
    };
    const page = unreachable(new TypeError("Cannot read properties of undefined (reading 'map')"), {
      ...where,
      status: 200,
      contentType: 'text/html; charset=utf-8',
    });
    expect(page?.message).toBe('cannot reach arm at https://arm: answered an html page, not the api');
    expect(page?.status).toBe(200);
    expect(
      unreachable(new Error('bad request'), { ...where, status: 400, contentType: 'application/json' }),
    ).toBe(undefined);
  });
});
