/**
 * What of a Lambda invocation event may be logged. HTTP requests (API Gateway v1/v2, function
 * URLs) carry credentials in headers (`Authorization: Bearer`, the Event Grid secret header,
 * cookies), in the query string (Event Grid's `?code=`) and in URLs inside the body (the
 * `data.validationUrl` of an Event Grid `SubscriptionValidationEvent` carries a `token=`): their
 * values are replaced before Powertools logs the event (`POWERTOOLS_LOGGER_LOG_EVENT=true`).
 * Names are kept, so a log still shows which headers and parameters a request had.
 */

/** What replaces a value that may be a credential. */
export const REDACTED = '[redacted]';

/** Headers whose values carry no credential (lower-case); every other header value is redacted. */
const SAFE_HEADERS: ReadonlySet<string> = new Set([
  'accept',
  'accept-encoding',
  'content-length',
  'content-type',
  'host',
  'user-agent',
  'x-amzn-trace-id',
  'x-forwarded-for',
  'x-forwarded-port',
  'x-forwarded-proto',
  // Event Grid delivery headers
  'aeg-event-type',
  'aeg-subscription-name',
  'aeg-delivery-count',
  'aeg-data-version',
  'aeg-metadata-version',
  'webhook-request-origin',
  'webhook-request-rate',
  // CloudEvents binary mode
  'ce-id',
  'ce-source',
  'ce-specversion',
  'ce-type',
  'ce-subject',
  'ce-time',
]);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function redactHeaders(headers: unknown): unknown {
  if (!isRecord(headers)) return headers;
  return Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [
      name,
      SAFE_HEADERS.has(name.toLowerCase())
        ? value
        : Array.isArray(value)
          ? value.map(() => REDACTED)
          : REDACTED,
    ]),
  );
}

function redactValues(values: unknown): unknown {
  if (!isRecord(values)) return values;
  return Object.fromEntries(
    Object.entries(values).map(([name, value]) => [
      name,
      Array.isArray(value) ? value.map(() => REDACTED) : REDACTED,
    ]),
  );
}

/** `a=1&code=s` -> `a=[redacted]&code=[redacted]`: parameter names only. */
function redactQueryString(query: unknown): unknown {
  if (typeof query !== 'string' || query === '') return query;
  return query
    .split('&')
    .map((pair) => `${pair.split('=')[0]}=${REDACTED}`)
    .join('&');
}

/** A path or URL with its query string values redacted. */
function redactUrl(url: unknown): unknown {
  if (typeof url !== 'string') return url;
  const at = url.indexOf('?');
  return at < 0 ? url : `${url.slice(0, at)}?${redactQueryString(url.slice(at + 1)) as string}`;
}

/** An http(s) URL with a query string, up to the first character no URL holds unescaped. */
const URL_WITH_QUERY = /https?:\/\/[^\s"'<>?]*\?[^\s"'<>]*/gi;

/** Text with the query values of every http(s) URL in it redacted. */
function redactUrlsIn(text: string): string {
  return text.replace(URL_WITH_QUERY, (url) => redactUrl(url) as string);
}

/** Every string inside a parsed JSON value with the URLs in it redacted. */
function redactUrlsDeep(value: unknown): unknown {
  if (typeof value === 'string') return redactUrlsIn(value);
  if (Array.isArray(value)) return value.map(redactUrlsDeep);
  if (isRecord(value))
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactUrlsDeep(v)]));
  return value;
}

/**
 * A request body with the query values of the URLs in it redacted. A JSON body is parsed, so
 * escapes (`\u0026`) cannot hide a parameter from the redaction; any other text is scanned as
 * it is. A base64 body is decoded first and encoded again (base64 hides nothing from a reader).
 */
function redactBody(body: unknown, isBase64Encoded: unknown): unknown {
  if (typeof body !== 'string' || body === '') return body;
  const text = isBase64Encoded === true ? Buffer.from(body, 'base64').toString('utf8') : body;
  let redacted: string;
  try {
    redacted = JSON.stringify(redactUrlsDeep(JSON.parse(text)));
  } catch {
    redacted = redactUrlsIn(text);
  }
  return isBase64Encoded === true ? Buffer.from(redacted, 'utf8').toString('base64') : redacted;
}

/**
 * A copy of `event` safe to log: for an HTTP request, every header value not known to be
 * harmless, every query parameter value (of the request and of URLs in its body), cookies
 * and the authorizer context are redacted; any other event is returned as it is.
 */
export function redactEventForLog(event: unknown): unknown {
  if (!isRecord(event) || !('headers' in event || 'multiValueHeaders' in event)) return event;
  const out: Record<string, unknown> = { ...event };
  if ('headers' in out) out.headers = redactHeaders(out.headers);
  if ('multiValueHeaders' in out) out.multiValueHeaders = redactHeaders(out.multiValueHeaders);
  if ('queryStringParameters' in out) out.queryStringParameters = redactValues(out.queryStringParameters);
  if ('multiValueQueryStringParameters' in out)
    out.multiValueQueryStringParameters = redactValues(out.multiValueQueryStringParameters);
  if ('rawQueryString' in out) out.rawQueryString = redactQueryString(out.rawQueryString);
  if ('cookies' in out && Array.isArray(out.cookies)) out.cookies = out.cookies.map(() => REDACTED);
  if ('path' in out) out.path = redactUrl(out.path);
  if ('body' in out) out.body = redactBody(out.body, out.isBase64Encoded);
  if (isRecord(out.requestContext)) {
    const rc: Record<string, unknown> = { ...out.requestContext };
    if ('authorizer' in rc) rc.authorizer = REDACTED;
    if ('identity' in rc && isRecord(rc.identity)) rc.identity = redactValues(rc.identity);
    out.requestContext = rc;
  }
  return out;
}
