/**
 * A pass-through HTTP proxy in front of moto. It names every AWS request (operation,
 * account, region), injects latency and faults from a `FaultInjector`, records each
 * request in a `RequestLog`, measures how many requests are in flight at once, and can
 * answer operations moto lacks through `override(operation, handler)`.
 *
 * Classification:
 * - region and service: the SigV4 credential scope (`Authorization: ... Credential=AKID/DATE/REGION/SERVICE/aws4_request`,
 *   or `X-Amz-Credential` in a presigned query string);
 * - operation: `X-Amz-Target: Prefix.Operation` (JSON protocol), else `Action=` in the form body or query string
 *   (query protocol: STS, EC2, IAM...), else `/service/S/operation/Op` (Smithy RPC v2), else the REST route table
 *   (EKS), else the S3 REST API (path-style `/bucket[/key]` and subresource: `GetBucketLocation`, `PutObject`...;
 *   an override may also name one object as `s3:<METHOD> <path>`), else `<service>:<METHOD> <path>`;
 * - `deny` faults answer 403 `AccessDenied` (query, EC2, S3) or `AccessDeniedException` (JSON protocols);
 * - scope (account id): for requests naming a role (`RoleArn=` of STS AssumeRole*), the role's account; otherwise the
 *   account of the access key id, learnt from every successful AssumeRole answer that passes through the proxy
 *   (moto maps assumed-role credentials to the role's account the same way) or given in `accounts`; `undefined` when
 *   the key is unknown (for example the base `testing` credentials, unless mapped).
 *
 * Each request is recorded on arrival (so the log stays in arrival order) and completed in place with
 * `durationMs`, `status` (absent when a `timeout` fault held it until the client gave up) and `fault`.
 */

import { setMaxListeners } from 'node:events';
import {
  Agent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Fault, FaultInjector, type RequestInfo, RequestLog } from './faults.ts';
import { assertLoopback } from './net.ts';
import type { JwksServer } from './oidc.ts';
import { deniedMessage } from './request-log.ts';
import { webIdentityTokenHandler } from './sts-web-identity.ts';

/** What the proxy records per request: `RequestInfo` plus AWS details tests may read. */
export interface AwsRequestInfo extends RequestInfo {
  cloud: 'aws';
  /** Signing name from the credential scope (`eks`, `sts`, `ec2`). */
  service?: string;
  /** The resource a REST path names (EKS cluster name, tagged ARN), when there is one. */
  resource?: string;
  /** The access key id the request was signed with (never the secret). */
  accessKeyId?: string;
  /** The `x-amz-expected-bucket-owner` header of an S3 request (moto ignores it; tests read it here). */
  expectedBucketOwner?: string;
}

/** A buffered request as an override handler sees it. */
export interface ProxiedRequest {
  method: string;
  /** Path and query string as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  info: AwsRequestInfo;
}

/** A complete answer. */
export interface ProxyResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/**
 * Answers one operation locally; `forward()` gets moto's answer when the handler only wants to
 * alter it, `forward(body)` sends moto the same signed headers with another body (another
 * operation asked for the same caller, e.g. GetCallerIdentity).
 */
export type OverrideHandler = (
  req: ProxiedRequest,
  tools: { forward(body?: Buffer): Promise<ProxyResponse> },
) => ProxyResponse | Promise<ProxyResponse>;

export interface AwsProxyOptions {
  /** moto's base URL (loopback only). */
  upstream: string;
  faults?: FaultInjector;
  log?: RequestLog;
  /** Access key id → account id, for keys not obtained through AssumeRole via this proxy. */
  accounts?: Record<string, string>;
  port?: number;
  /** Answers STS GetWebIdentityToken (moto lacks it) with JWTs this issuer signs (`sts-web-identity.ts`). */
  webIdentityIssuer?: JwksServer;
  /**
   * Asked once per request, after the injected latency and before faults and overrides: a refusal
   * is answered as IAM refuses a call (403 `AccessDenied` / `AccessDeniedException` with its
   * message) and recorded with `fault: 'deny'` (the local stack's IAM emulation, `stack-iam.ts`).
   */
  authorize?: Authorizer;
}

/** Decides whether a request may proceed: `undefined` lets it through, `{ message }` refuses it. */
export type Authorizer = (req: ProxiedRequest) => { message: string } | undefined;

export interface AwsProxy {
  url: string;
  faults: FaultInjector;
  log: RequestLog;
  /** Access key id → account id (seeded from options, extended by every AssumeRole answer). */
  accounts: Map<string, string>;
  /** Requests currently between arrival and answer, and the most seen at once since the last `resetStats()`. */
  readonly stats: { inFlight: number; maxInFlight: number };
  resetStats(): void;
  /** The AWS entries of the log, typed. */
  requests(): AwsRequestInfo[];
  /** Answers `operation` with `handler` instead of moto (faults still apply first); returns a remover. */
  override(operation: string, handler: OverrideHandler): () => void;
  /** Stops listening, releases held (`timeout`) requests and closes every socket. */
  stop(): Promise<void>;
}

interface Route {
  service: string;
  method: string;
  pattern: RegExp;
  operation: string;
}

const SEG = '([^/]+)';
const route = (method: string, path: string, operation: string, service = 'eks'): Route => ({
  service,
  method,
  // `{x}` is one path segment; `{arn+}` is the rest of the path (tags take an ARN with slashes).
  pattern: new RegExp(`^${path.replaceAll('{arn+}', '(.+)').replace(/\{\w+\}/g, SEG)}$`),
  operation,
});

/** The EKS REST routes (API reference, 2017-11-01); the first capture group is the resource. */
export const EKS_ROUTES: readonly Route[] = [
  route('POST', '/clusters', 'CreateCluster'),
  route('GET', '/clusters', 'ListClusters'),
  route('GET', '/clusters/{name}', 'DescribeCluster'),
  route('DELETE', '/clusters/{name}', 'DeleteCluster'),
  route('POST', '/clusters/{name}/update-config', 'UpdateClusterConfig'),
  route('POST', '/clusters/{name}/updates', 'UpdateClusterVersion'),
  route('GET', '/clusters/{name}/updates', 'ListUpdates'),
  route('GET', '/clusters/{name}/updates/{id}', 'DescribeUpdate'),
  route('POST', '/clusters/{name}/node-groups', 'CreateNodegroup'),
  route('GET', '/clusters/{name}/node-groups', 'ListNodegroups'),
  route('GET', '/clusters/{name}/node-groups/{ng}', 'DescribeNodegroup'),
  route('DELETE', '/clusters/{name}/node-groups/{ng}', 'DeleteNodegroup'),
  route('POST', '/clusters/{name}/node-groups/{ng}/update-config', 'UpdateNodegroupConfig'),
  route('POST', '/clusters/{name}/node-groups/{ng}/update-version', 'UpdateNodegroupVersion'),
  route('POST', '/clusters/{name}/fargate-profiles', 'CreateFargateProfile'),
  route('GET', '/clusters/{name}/fargate-profiles', 'ListFargateProfiles'),
  route('GET', '/clusters/{name}/fargate-profiles/{fp}', 'DescribeFargateProfile'),
  route('DELETE', '/clusters/{name}/fargate-profiles/{fp}', 'DeleteFargateProfile'),
  route('POST', '/clusters/{name}/addons', 'CreateAddon'),
  route('GET', '/clusters/{name}/addons', 'ListAddons'),
  route('GET', '/clusters/{name}/addons/{addon}', 'DescribeAddon'),
  route('DELETE', '/clusters/{name}/addons/{addon}', 'DeleteAddon'),
  route('POST', '/clusters/{name}/addons/{addon}/update', 'UpdateAddon'),
  route('GET', '/addons/supported-versions', 'DescribeAddonVersions'),
  route('POST', '/clusters/{name}/access-entries', 'CreateAccessEntry'),
  route('GET', '/clusters/{name}/access-entries', 'ListAccessEntries'),
  route('GET', '/clusters/{name}/access-entries/{arn+}', 'DescribeAccessEntry'),
  route('DELETE', '/clusters/{name}/access-entries/{arn+}', 'DeleteAccessEntry'),
  route('POST', '/cluster-registrations', 'RegisterCluster'),
  route('DELETE', '/cluster-registrations/{name}', 'DeregisterCluster'),
  route('GET', '/tags/{arn+}', 'ListTagsForResource'),
  route('POST', '/tags/{arn+}', 'TagResource'),
  route('DELETE', '/tags/{arn+}', 'UntagResource'),
];

/** The AppConfig data plane's REST routes (appconfigdata 2021-11-11, signing name `appconfig`); see `appconfig-fake.ts`. */
export const APPCONFIGDATA_ROUTES: readonly Route[] = [
  route('POST', '/configurationsessions', 'StartConfigurationSession', 'appconfig'),
  route('GET', '/configuration', 'GetLatestConfiguration', 'appconfig'),
];

type Protocol = 'rest-json' | 'json' | 'query' | 'ec2' | 'rpc-v2' | 'rest-xml';

interface Classified {
  operation: string;
  protocol: Protocol;
  service?: string;
  region?: string;
  accessKeyId?: string;
  resource?: string;
  /** Account named by the request itself (RoleArn). */
  namedAccount?: string;
  /** `<service>:<METHOD> <path>`, for S3 requests (named by operation): overrides may use it for one object. */
  path?: string;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Splits a SigV4 credential (`AKID/DATE/REGION/SERVICE/aws4_request`). */
function credentialScope(headers: IncomingHttpHeaders, query: URLSearchParams) {
  const auth = header(headers, 'authorization');
  const credential = auth?.match(/Credential=([^,\s]+)/)?.[1] ?? query.get('X-Amz-Credential') ?? undefined;
  const [accessKeyId, , region, service] = credential?.split('/') ?? [];
  return { accessKeyId, region, service };
}

/** Names an AWS request from its method, URL, headers and body (see the module comment for the rules). */
export function classifyAwsRequest(
  method: string,
  url: string,
  headers: IncomingHttpHeaders,
  body: Buffer,
): Classified {
  const parsed = new URL(url, 'http://proxy.invalid');
  const scope = credentialScope(headers, parsed.searchParams);
  const base: Omit<Classified, 'operation' | 'protocol'> = {};
  if (scope.service) base.service = scope.service;
  if (scope.region) base.region = scope.region;
  if (scope.accessKeyId) base.accessKeyId = scope.accessKeyId;

  const target = header(headers, 'x-amz-target');
  if (target) return { ...base, protocol: 'json', operation: target.slice(target.lastIndexOf('.') + 1) };

  const contentType = header(headers, 'content-type') ?? '';
  const form = contentType.includes('application/x-www-form-urlencoded')
    ? new URLSearchParams(body.toString('utf8'))
    : new URLSearchParams();
  const action = form.get('Action') ?? parsed.searchParams.get('Action');
  if (action) {
    const roleArn = form.get('RoleArn') ?? parsed.searchParams.get('RoleArn');
    const namedAccount = roleArn?.match(/^arn:[\w-]+:iam::(\d{12}):/)?.[1];
    return {
      ...base,
      ...(namedAccount ? { namedAccount } : {}),
      protocol: scope.service === 'ec2' ? 'ec2' : 'query',
      operation: action,
    };
  }

  const rpc = parsed.pathname.match(/^\/service\/[^/]+\/operation\/([^/]+)$/);
  if (rpc?.[1]) return { ...base, protocol: 'rpc-v2', operation: rpc[1] };

  const s3 = scope.service === 's3' ? s3Operation(method, parsed, headers) : undefined;
  if (s3) return { ...base, protocol: 'rest-xml', operation: s3, path: `s3:${method} ${parsed.pathname}` };

  for (const r of [...EKS_ROUTES, ...APPCONFIGDATA_ROUTES]) {
    if (r.method !== method || (scope.service && scope.service !== r.service)) continue;
    const match = parsed.pathname.match(r.pattern);
    if (!match) continue;
    const resource = match[1] === undefined ? undefined : decodeURIComponent(match[1]);
    return { ...base, ...(resource ? { resource } : {}), protocol: 'rest-json', operation: r.operation };
  }
  return {
    ...base,
    protocol: 'rest-json',
    operation: `${scope.service ?? 'unknown'}:${method} ${parsed.pathname}`,
  };
}

/** The S3 operation of a path-style request (`/bucket[/key]` and its subresource query), as the S3 API names it. */
export function s3Operation(method: string, url: URL, headers: IncomingHttpHeaders): string | undefined {
  const [bucket, ...key] = url.pathname.slice(1).split('/');
  const q = url.searchParams;
  if (!bucket) return method === 'GET' ? 'ListBuckets' : undefined;
  if (key.length > 0 && key.join('/') !== '') {
    if (method === 'PUT') return header(headers, 'x-amz-copy-source') ? 'CopyObject' : 'PutObject';
    if (method === 'DELETE') return 'DeleteObject';
    if (method === 'HEAD') return 'HeadObject';
    return method === 'GET' ? 'GetObject' : undefined;
  }
  const sub = (
    [
      ['location', 'BucketLocation'],
      ['object-lock', 'ObjectLockConfiguration'],
      ['versioning', 'BucketVersioning'],
      ['policy', 'BucketPolicy'],
      ['tagging', 'BucketTagging'],
    ] as const
  ).find(([name]) => q.has(name));
  if (sub) return method === 'PUT' ? `Put${sub[1]}` : method === 'GET' ? `Get${sub[1]}` : undefined;
  if (method === 'GET')
    return q.has('versions')
      ? 'ListObjectVersions'
      : q.get('list-type') === '2'
        ? 'ListObjectsV2'
        : 'ListObjects';
  if (method === 'POST' && q.has('delete')) return 'DeleteObjects';
  return ({ HEAD: 'HeadBucket', PUT: 'CreateBucket', DELETE: 'DeleteBucket' } as Record<string, string>)[
    method
  ];
}

const ERROR_CODES: Record<number, { json: string; query: string }> = {
  400: { json: 'InvalidParameterException', query: 'InvalidParameterValue' },
  403: { json: 'AccessDeniedException', query: 'AccessDenied' },
  404: { json: 'ResourceNotFoundException', query: 'NotFound' },
  429: { json: 'ThrottlingException', query: 'Throttling' },
  500: { json: 'InternalFailure', query: 'InternalFailure' },
  502: { json: 'InternalFailure', query: 'InternalFailure' },
  503: { json: 'ServiceUnavailableException', query: 'ServiceUnavailable' },
  504: { json: 'InternalFailure', query: 'InternalFailure' },
};

function requestId(): string {
  return crypto.randomUUID();
}

const xmlEscape = (s: string) => s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** An error answer in the wire shape of the request's protocol. */
export function awsError(
  protocol: Protocol,
  status: number,
  code: string,
  message: string,
  extraHeaders: Record<string, string> = {},
): ProxyResponse {
  const id = requestId();
  if (protocol === 'rest-xml') {
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message><RequestId>${id}</RequestId></Error>`;
    return {
      status,
      headers: { 'content-type': 'application/xml', 'x-amz-request-id': id, ...extraHeaders },
      body,
    };
  }
  if (protocol === 'query' || protocol === 'ec2') {
    const body =
      protocol === 'ec2'
        ? `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message></Error></Errors><RequestID>${id}</RequestID></Response>`
        : `<ErrorResponse><Error><Type>${status < 500 ? 'Sender' : 'Receiver'}</Type><Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`;
    return { status, headers: { 'content-type': 'text/xml', 'x-amzn-requestid': id, ...extraHeaders }, body };
  }
  const json = protocol === 'json' ? { __type: code, message } : { message };
  return {
    status,
    headers: {
      'content-type': protocol === 'json' ? 'application/x-amz-json-1.1' : 'application/json',
      'x-amzn-errortype': code,
      'x-amzn-requestid': id,
      ...extraHeaders,
    },
    body: JSON.stringify(json),
  };
}

function faultResponse(
  protocol: Protocol,
  fault: Exclude<Fault, { kind: 'timeout' | 'malformed' }>,
  info?: AwsRequestInfo,
): ProxyResponse {
  if (fault.kind === 'deny') {
    // What IAM answers a call no policy allows: AccessDenied (query/XML), AccessDeniedException (JSON).
    const code =
      protocol === 'query' || protocol === 'ec2' || protocol === 'rest-xml'
        ? 'AccessDenied'
        : 'AccessDeniedException';
    return awsError(protocol, 403, code, fault.message ?? (info ? deniedMessage(info) : 'access denied'));
  }
  if (fault.kind === 'throttle') {
    const retryAfter: Record<string, string> =
      fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
    if (protocol === 'rest-json') {
      // The exact shape API Gateway-fronted services (EKS) send when throttling.
      return {
        status: 429,
        headers: {
          'content-type': 'application/json',
          'x-amzn-errortype': 'ThrottlingException',
          'x-amzn-requestid': requestId(),
          ...retryAfter,
        },
        body: '{"message":"Rate exceeded"}',
      };
    }
    const code =
      protocol === 'ec2'
        ? 'RequestLimitExceeded'
        : protocol === 'json'
          ? 'ThrottlingException'
          : 'Throttling';
    return awsError(protocol, 429, code, 'Rate exceeded', retryAfter);
  }
  const codes = ERROR_CODES[fault.status] ?? {
    json: fault.status >= 500 ? 'InternalFailure' : 'BadRequestException',
    query: fault.status >= 500 ? 'InternalFailure' : 'InvalidRequest',
  };
  return awsError(
    protocol,
    fault.status,
    protocol === 'query' || protocol === 'ec2' ? codes.query : codes.json,
    `injected fault: HTTP ${fault.status}`,
  );
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
]);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startAwsProxy(options: AwsProxyOptions): Promise<AwsProxy> {
  assertLoopback(options.upstream);
  const upstream = new URL(options.upstream);
  const faults = options.faults ?? new FaultInjector();
  const log = options.log ?? new RequestLog();
  const accounts = new Map(Object.entries(options.accounts ?? {}));
  const overrides = new Map<string, OverrideHandler>();
  if (options.webIdentityIssuer) {
    overrides.set('GetWebIdentityToken', webIdentityTokenHandler(options.webIdentityIssuer));
  }
  const stats = { inFlight: 0, maxInFlight: 0 };
  const stopping = new AbortController();
  // Every delayed request listens on this signal.
  setMaxListeners(0, stopping.signal);
  /** Requests a `timeout` fault holds, with how to end their record. */
  const held = new Map<ServerResponse, () => void>();
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  function forward(req: ProxiedRequest): Promise<ProxyResponse> {
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    }
    headers['content-length'] = String(req.body.length);
    return new Promise((resolve, reject) => {
      const up = request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const out: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers)) {
              if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = Array.isArray(v) ? v.join(', ') : v;
            }
            resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
          });
        },
      );
      up.on('error', reject);
      up.end(req.body);
    });
  }

  /** Remembers which account an AssumeRole answer's access key belongs to. */
  function learn(cls: Classified, answer: ProxyResponse): void {
    if (!cls.namedAccount || answer.status !== 200 || answer.body === undefined) return;
    const key = answer.body.toString().match(/<AccessKeyId>([^<]+)<\/AccessKeyId>/)?.[1];
    if (key) accounts.set(key, cls.namedAccount);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const t0 = performance.now();
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    let done = false;
    let info: AwsRequestInfo = { cloud: 'aws', operation: 'unknown', at };
    const finish = (status: number | undefined) => {
      if (done) return;
      done = true;
      stats.inFlight--;
      info.durationMs = performance.now() - t0;
      if (status !== undefined) info.status = status;
    };
    const send = (answer: ProxyResponse) => {
      const body = answer.body === undefined ? Buffer.alloc(0) : Buffer.from(answer.body);
      finish(answer.status);
      if (res.destroyed) return;
      res.writeHead(answer.status, { ...answer.headers, 'content-length': String(body.length) });
      res.end(body);
    };
    res.on('close', () => finish(undefined));

    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const cls = classifyAwsRequest(method, url, req.headers, body);
    const scope = cls.namedAccount ?? (cls.accessKeyId ? accounts.get(cls.accessKeyId) : undefined);
    info = {
      cloud: 'aws',
      operation: cls.operation,
      ...(scope ? { scope } : {}),
      ...(cls.region ? { region: cls.region } : {}),
      ...(cls.service ? { service: cls.service } : {}),
      ...(cls.resource ? { resource: cls.resource } : {}),
      ...(cls.accessKeyId ? { accessKeyId: cls.accessKeyId } : {}),
      ...(header(req.headers, 'x-amz-expected-bucket-owner')
        ? { expectedBucketOwner: header(req.headers, 'x-amz-expected-bucket-owner') }
        : {}),
      at,
    };
    log.record(info);
    const proxied: ProxiedRequest = { method, url, headers: req.headers, body, info };

    await faults.delay(stopping.signal);
    if (stopping.signal.aborted) {
      res.destroy();
      return;
    }
    const refusal = options.authorize?.(proxied);
    if (refusal) {
      info.fault = 'deny';
      return send(faultResponse(cls.protocol, { kind: 'deny', message: refusal.message }, info));
    }
    const fault = faults.take(info);
    if (fault) info.fault = fault.kind;
    try {
      if (fault?.kind === 'timeout') {
        held.set(res, () => finish(undefined));
        res.on('close', () => held.delete(res));
        return;
      }
      if (fault && fault.kind !== 'malformed') return send(faultResponse(cls.protocol, fault, info));
      const override = (cls.path && overrides.get(cls.path)) || overrides.get(cls.operation);
      const answer = override
        ? await override(proxied, {
            forward: (other?: Buffer) => forward(other === undefined ? proxied : { ...proxied, body: other }),
          })
        : await forward(proxied);
      learn(cls, answer);
      if (fault?.kind === 'malformed' && answer.body !== undefined) {
        const full = Buffer.from(answer.body);
        return send({ ...answer, body: full.subarray(0, Math.floor(full.length / 2)) });
      }
      return send(answer);
    } catch (error) {
      return send(
        awsError(cls.protocol, 502, 'InternalFailure', `proxy: upstream failed: ${(error as Error).message}`),
      );
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    faults,
    log,
    accounts,
    stats,
    resetStats() {
      stats.maxInFlight = stats.inFlight;
    },
    requests() {
      return log.entries.filter((e): e is AwsRequestInfo => e.cloud === 'aws');
    },
    override(operation, handler) {
      overrides.set(operation, handler);
      return () => {
        if (overrides.get(operation) === handler) overrides.delete(operation);
      };
    },
    async stop() {
      stopping.abort();
      for (const [res, release] of held) {
        release();
        res.destroy();
      }
      held.clear();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      agent.destroy();
    },
  };
}
