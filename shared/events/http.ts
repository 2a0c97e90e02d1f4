/**
 * The HTTP rules shared by the two HTTPS event endpoints (Pub/Sub push, Event Grid webhook):
 * size limit first, then authentication, then parsing; errors mapped to status codes. The
 * handler only acts on the returned `events` and sends back `response`.
 */
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import {
  type AzureEventAuth,
  parseEventGridBody,
  verifyEventGridRequest,
  webhookValidationHeaders,
} from './azure.ts';
import { normalisePushMessage, type PushAuthOptions, parsePushBody, verifyPushToken } from './gcp.ts';
import { type ClusterEvent, EventAuthError, MalformedEventError, UnsupportedEventError } from './model.ts';

/** Largest request body accepted, in bytes; larger ones get 413 before anything is parsed. */
export const MAX_BODY_BYTES = 256 * 1024;

/** An HTTP request as the intake sees it; header names lower-case. */
export interface HttpRequest {
  method: string;
  headers: Record<string, string | undefined>;
  query: Record<string, string | undefined>;
  /** The body as received: text, or base64 when `isBase64Encoded`. */
  body: string | undefined;
  isBase64Encoded?: boolean | undefined;
}

/** What the handler returns (API Gateway HTTP API v2 result shape). */
export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** The outcome of one request: the response to send and the events to act on. */
export interface IntakeResult {
  response: HttpResponse;
  events: ClusterEvent[];
  /** Well-formed events that were not acted on. */
  ignored: number;
  /** Why the request was refused or events ignored, for logs (never a token or secret). */
  reason?: string;
  /**
   * Event Grid: the answer to a subscription validation event in the body. The handler keeps
   * it in its final response when it also acts on the other events of the batch.
   */
  validationResponse?: { validationResponse: string };
}

/** Case-insensitive header lookup. */
export function header(headers: Record<string, string | undefined>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

function lowerCaseHeaders(headers: Record<string, string | undefined> | undefined) {
  const out: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(headers ?? {})) out[key.toLowerCase()] = value;
  return out;
}

/** An API Gateway HTTP API (payload v2) event as an `HttpRequest`. */
export function fromApiGatewayV2(event: APIGatewayProxyEventV2): HttpRequest {
  return {
    method: event.requestContext.http.method,
    headers: lowerCaseHeaders(event.headers),
    query: { ...(event.queryStringParameters ?? {}) },
    body: event.body,
    isBase64Encoded: event.isBase64Encoded,
  };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** A JSON response. */
export function jsonResponse(
  statusCode: number,
  body: unknown,
  headers: Record<string, string> = {},
): HttpResponse {
  return { statusCode, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/**
 * The response for an intake error: `EventAuthError` 401 (generic body), `MalformedEventError`
 * 400 `{error: reason}`, `UnsupportedEventError` 202 `{ignored: 1}`. Anything else is a bug or
 * an outage and is rethrown for the handler's error boundary (500, and the sender retries).
 */
export function errorResponse(error: unknown): HttpResponse {
  if (error instanceof EventAuthError) return jsonResponse(401, { error: 'unauthorized' });
  if (error instanceof MalformedEventError) return jsonResponse(400, { error: error.reason });
  if (error instanceof UnsupportedEventError) return jsonResponse(202, { ignored: 1 });
  throw error;
}

function refused(error: unknown): IntakeResult {
  const response = errorResponse(error);
  const reason = error instanceof EventAuthError ? error.reason : (error as Error).message;
  return { response, events: [], ignored: error instanceof UnsupportedEventError ? 1 : 0, reason };
}

/** The raw body size in bytes without decoding it (base64: the decoded size). */
function bodyBytes(request: HttpRequest): number {
  const body = request.body ?? '';
  if (!request.isBase64Encoded) return Buffer.byteLength(body, 'utf8');
  const padding = body.endsWith('==') ? 2 : body.endsWith('=') ? 1 : 0;
  return Math.floor((body.length * 3) / 4) - padding;
}

function bodyText(request: HttpRequest): string {
  const body = request.body ?? '';
  return request.isBase64Encoded ? Buffer.from(body, 'base64').toString('utf8') : body;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw new MalformedEventError('body: expected a JSON body');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new MalformedEventError('body: expected JSON', { cause: error });
  }
}

function tooLarge(): IntakeResult {
  return {
    response: jsonResponse(413, { error: `body larger than ${MAX_BODY_BYTES} bytes` }),
    events: [],
    ignored: 0,
    reason: 'body too large',
  };
}

function methodNotAllowed(allow: string): IntakeResult {
  return {
    response: jsonResponse(405, { error: 'method not allowed' }, { allow }),
    events: [],
    ignored: 0,
    reason: 'method not allowed',
  };
}

/**
 * One Pub/Sub push request: size limit, OIDC token, push envelope, one normalised event.
 * 200 `{accepted: 1}` with the event, 202 `{ignored: 1}`, 400, 401, 405 or 413.
 */
export async function intakeGcp(request: HttpRequest, options: PushAuthOptions): Promise<IntakeResult> {
  if (bodyBytes(request) > MAX_BODY_BYTES) return tooLarge();
  if (request.method.toUpperCase() !== 'POST') return methodNotAllowed('POST');
  try {
    await verifyPushToken(header(request.headers, 'authorization'), options);
    const envelope = parsePushBody(parseJson(bodyText(request)));
    const event = normalisePushMessage(envelope);
    return { response: jsonResponse(200, { accepted: 1 }), events: [event], ignored: 0 };
  } catch (error) {
    return refused(error);
  }
}

/** What the Event Grid endpoint needs to know. */
export interface AzureIntakeOptions {
  auth: AzureEventAuth;
}

/**
 * One Event Grid request: size limit, authentication (secret or Entra token), then the
 * CloudEvents OPTIONS handshake, an Event Grid validation event, or a batch of events (a
 * validation event in a batch is answered and the other events are still returned).
 * 200 (handshake, validation response, `{accepted, ignored}`, or both), 202 `{ignored: n}`
 * when nothing in the batch is acted on, 400, 401, 405 or 413.
 */
export async function intakeAzure(request: HttpRequest, options: AzureIntakeOptions): Promise<IntakeResult> {
  if (bodyBytes(request) > MAX_BODY_BYTES) return tooLarge();
  const method = request.method.toUpperCase();
  if (method !== 'POST' && method !== 'OPTIONS') return methodNotAllowed('POST, OPTIONS');
  const headers = lowerCaseHeaders(request.headers);
  try {
    await verifyEventGridRequest({ headers, query: request.query }, options.auth);
    if (method === 'OPTIONS') {
      const granted = webhookValidationHeaders(method, headers);
      if (!granted) throw new MalformedEventError('webhook-request-origin: expected the sender origin');
      return { response: { statusCode: 200, headers: granted, body: '' }, events: [], ignored: 0 };
    }
    const body = parseEventGridBody(parseJson(bodyText(request)));
    const validation = body.validationResponse;
    const reason = body.ignoredReasons.map((r) => `${r.providerType}: ${r.reason}`).join('; ') || undefined;
    if (validation && body.events.length === 0) {
      return {
        response: jsonResponse(200, validation),
        events: [],
        ignored: body.ignored,
        validationResponse: validation,
        ...(reason ? { reason } : {}),
      };
    }
    if (body.events.length === 0) {
      return {
        response: jsonResponse(202, { ignored: body.ignored }),
        events: [],
        ignored: body.ignored,
        reason,
      };
    }
    return {
      response: jsonResponse(200, { ...validation, accepted: body.events.length, ignored: body.ignored }),
      events: body.events,
      ignored: body.ignored,
      ...(reason ? { reason } : {}),
      ...(validation ? { validationResponse: validation } : {}),
    };
  } catch (error) {
    return refused(error);
  }
}
