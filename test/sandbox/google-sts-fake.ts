/**
 * Google's Security Token Service and IAM Service Account Credentials, on loopback, for
 * Workload Identity Federation from AWS.
 *
 * `POST /v1/token` (STS `token`, cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token):
 * form fields `grant_type` (must be `urn:ietf:params:oauth:grant-type:token-exchange`),
 * `audience` (the pool provider's full resource name), `requested_token_type`
 * (`urn:ietf:params:oauth:token-type:access_token`), `subject_token_type`
 * (`urn:ietf:params:aws:token-type:aws4_request`), `subject_token`, `scope`. The subject token
 * is the URL-encoded JSON of a signed STS `GetCallerIdentity` request, `{ url, method, headers:
 * [{ key, value }] }` (Google's "Workload Identity Federation with AWS" guide and its
 * `iam_workload_identity_aws_credential` sample). The fake checks its shape (POST to
 * `https://sts.<region>.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15`, an
 * `AWS4-HMAC-SHA256` authorization for service `sts`, `x-amz-date`, `host`, and
 * `x-goog-cloud-target-resource` equal to the audience) and, where real Google would send the
 * request on to AWS, recomputes the SigV4 signature with the secret of the access key it was
 * told about (`principals`), so a token signed with any other secret is refused. Success:
 * `{ access_token, issued_token_type, token_type: "Bearer", expires_in }`; failure: the OAuth
 * error shape `{ error, error_description }` with 400.
 *
 * `POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`
 * (cloud.google.com/iam/docs/reference/credentials/rest/v1/projects.serviceAccounts/generateAccessToken):
 * bearer = a federated token this fake issued to a principal allowed to impersonate `email`;
 * body `{ scope: [...], lifetime? }`; answers `{ accessToken, expireTime }`, else the Google
 * API error shape `{ error: { code, message, status } }`.
 */
import { createHash, createHmac } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const AWS4_REQUEST_TOKEN_TYPE = 'urn:ietf:params:aws:token-type:aws4_request';

/** An AWS identity the fake can authenticate: what AWS would answer GetCallerIdentity with. */
export interface AwsPrincipal {
  accessKeyId: string;
  secretAccessKey: string;
  /** The caller ARN (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`). */
  arn: string;
}

export interface GoogleStsFakeOptions {
  /** The only audience accepted (the configured pool provider). */
  audience: string;
  principals: AwsPrincipal[];
  /** Service account email -> caller ARNs (assumed-role ARNs or role ARNs) allowed to impersonate it. */
  impersonation?: Record<string, string[]>;
}

/** The decoded subject token and what the fake made of it. */
export interface TokenExchange {
  form: Record<string, string>;
  subject?: { url: string; method: string; headers: Record<string, string> };
  /** The AWS caller ARN, when the signature verified. */
  principal?: string;
  error?: string;
}

export interface GoogleStsFake {
  /** `http://127.0.0.1:<port>`; the token URL is `<url>/v1/token`. */
  url: string;
  exchanges: TokenExchange[];
  impersonations: { serviceAccount: string; scope: string[]; error?: string }[];
  /** Tokens issued: federated (STS) and service account (IAM Credentials), by value. */
  issued: Map<string, { kind: 'federated' | 'service-account'; principal: string; scope: string[] }>;
  stop(): Promise<void>;
}

const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** Recomputes a SigV4 signature of the serialized request (empty payload) with `secret`. */
function sigV4Matches(
  subject: { url: string; method: string; headers: Record<string, string> },
  secret: string,
): boolean {
  const auth = subject.headers.authorization ?? '';
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (!m) return false;
  const [, , date, region, service, signedHeaders, signature] = m as unknown as string[];
  const url = new URL(subject.url);
  const canonicalQuery = [...url.searchParams]
    .map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const names = signedHeaders!.split(';');
  const canonicalHeaders = names.map((n) => `${n}:${(subject.headers[n] ?? '').trim()}\n`).join('');
  const canonicalRequest = [
    subject.method.toUpperCase(),
    url.pathname || '/',
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    sha256(''),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    subject.headers['x-amz-date'],
    scope,
    sha256(canonicalRequest),
  ].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), 'aws4_request');
  return createHmac('sha256', key).update(stringToSign).digest('hex') === signature;
}

/** `arn:aws:sts::<acct>:assumed-role/<role>/<session>` -> `arn:aws:iam::<acct>:role/<role>`. */
function roleOf(arn: string): string {
  const m = /^arn:([\w-]+):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(arn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : arn;
}

/** Starts the fake on 127.0.0.1. */
export async function startGoogleStsFake(options: GoogleStsFakeOptions): Promise<GoogleStsFake> {
  const exchanges: TokenExchange[] = [];
  const impersonations: GoogleStsFake['impersonations'] = [];
  const issued: GoogleStsFake['issued'] = new Map();

  const json = (res: ServerResponse, status: number, body: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));

  const exchange = (body: string, res: ServerResponse) => {
    const form = Object.fromEntries(new URLSearchParams(body));
    const record: TokenExchange = { form };
    exchanges.push(record);
    const refuse = (error: string, description: string) => {
      record.error = description;
      json(res, 400, { error, error_description: description });
    };
    if (form.grant_type !== TOKEN_EXCHANGE_GRANT)
      return refuse('unsupported_grant_type', 'Unsupported grant type.');
    if (form.requested_token_type !== ACCESS_TOKEN_TYPE)
      return refuse('invalid_request', 'Invalid value for "requested_token_type".');
    if (form.audience !== options.audience)
      return refuse(
        'invalid_target',
        'The target service indicated by the "audience" parameters is invalid.',
      );
    if (form.subject_token_type !== AWS4_REQUEST_TOKEN_TYPE)
      return refuse('invalid_request', 'Invalid value for "subject_token_type".');
    let parsed: { url?: unknown; method?: unknown; headers?: unknown };
    try {
      parsed = JSON.parse(decodeURIComponent(form.subject_token ?? '')) as typeof parsed;
    } catch {
      return refuse('invalid_grant', 'The subject token is not a serialized AWS request.');
    }
    if (
      typeof parsed.url !== 'string' ||
      typeof parsed.method !== 'string' ||
      !Array.isArray(parsed.headers) ||
      !parsed.headers.every((h) => typeof h?.key === 'string' && typeof h?.value === 'string')
    ) {
      return refuse('invalid_grant', 'The subject token must hold url, method and headers [{key, value}].');
    }
    const headers = Object.fromEntries(
      (parsed.headers as { key: string; value: string }[]).map((h) => [h.key.toLowerCase(), h.value]),
    );
    const subject = { url: parsed.url, method: parsed.method, headers };
    record.subject = subject;
    const url = new URL(subject.url);
    if (
      subject.method !== 'POST' ||
      !/^sts\.[a-z0-9-]+\.amazonaws\.com$/.test(url.hostname) ||
      url.protocol !== 'https:' ||
      url.searchParams.get('Action') !== 'GetCallerIdentity' ||
      url.searchParams.get('Version') !== '2011-06-15'
    ) {
      return refuse(
        'invalid_grant',
        'The subject token must be a POST of a regional STS GetCallerIdentity URL.',
      );
    }
    if (headers.host !== url.host) return refuse('invalid_grant', 'The host header must name the STS host.');
    if (!headers['x-amz-date']) return refuse('invalid_grant', 'The x-amz-date header is missing.');
    if (headers['x-goog-cloud-target-resource'] !== options.audience) {
      return refuse('invalid_grant', 'x-goog-cloud-target-resource must equal the audience.');
    }
    const credential = /Credential=([^/]+)\/\d{8}\/([^/]+)\/sts\/aws4_request/.exec(
      headers.authorization ?? '',
    );
    if (!headers.authorization?.startsWith('AWS4-HMAC-SHA256 ') || !credential) {
      return refuse('invalid_grant', 'The request must carry an AWS4-HMAC-SHA256 authorization for sts.');
    }
    if (url.hostname !== `sts.${credential[2]}.amazonaws.com`) {
      return refuse('invalid_grant', 'The signing region must be the STS endpoint region.');
    }
    const principal = options.principals.find((p) => p.accessKeyId === credential[1]);
    // Real Google forwards the request to AWS, which checks the signature; here it is checked directly.
    if (!principal || !sigV4Matches(subject, principal.secretAccessKey)) {
      return refuse(
        'invalid_grant',
        'The AWS signature does not match (AWS answered 403 to GetCallerIdentity).',
      );
    }
    record.principal = principal.arn;
    const token = `ya29.federated-${crypto.randomUUID()}`;
    issued.set(token, { kind: 'federated', principal: principal.arn, scope: (form.scope ?? '').split(' ') });
    json(res, 200, {
      access_token: token,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 3600,
    });
  };

  const generate = (email: string, body: string, bearer: string | undefined, res: ServerResponse) => {
    let scope: string[] = [];
    try {
      scope = ((JSON.parse(body) as { scope?: string[] }).scope ?? []).filter((s) => typeof s === 'string');
    } catch {
      // An unparseable body has no scope and is refused below.
    }
    const record: GoogleStsFake['impersonations'][number] = { serviceAccount: email, scope };
    impersonations.push(record);
    const deny = (code: number, status: string, message: string) => {
      record.error = status;
      json(res, code, { error: { code, message, status } });
    };
    const federated = bearer ? issued.get(bearer) : undefined;
    if (federated?.kind !== 'federated') {
      return deny(401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.');
    }
    const allowed = options.impersonation?.[email] ?? [];
    if (!allowed.includes(federated.principal) && !allowed.includes(roleOf(federated.principal))) {
      return deny(
        403,
        'PERMISSION_DENIED',
        "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
      );
    }
    if (scope.length === 0) return deny(400, 'INVALID_ARGUMENT', 'Scope required.');
    const token = `ya29.sa-${crypto.randomUUID()}`;
    issued.set(token, { kind: 'service-account', principal: email, scope });
    json(res, 200, { accessToken: token, expireTime: new Date(Date.now() + 3600_000).toISOString() });
  };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'POST' && path === '/v1/token') return exchange(body, res);
      const sa = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):generateAccessToken$/.exec(path);
      if (req.method === 'POST' && sa) {
        const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
        return generate(decodeURIComponent(sa[1]!), body, bearer, res);
      }
      json(res, 404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    impersonations,
    issued,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
