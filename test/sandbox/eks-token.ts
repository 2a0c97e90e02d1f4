/**
 * Checks EKS bearer tokens the way the EKS authenticator does before it calls STS:
 * `k8s-aws-v1.` + base64url (no padding) of a presigned STS `GetCallerIdentity` URL whose
 * signed headers include `x-k8s-aws-id`, not expired (`X-Amz-Date` + `X-Amz-Expires`
 * against `now`).
 *
 * The cluster name itself is only bound by the signature. Given the secret access key of
 * the signing credentials (`secretAccessKey`), the signature is recomputed here with
 * SigV4 (independently of the SDK signer) for `x-k8s-aws-id: <clusterName>`, so a token
 * minted for another cluster is refused. Without it, only the shape is checked.
 *
 * Used by the sandbox as the fake clusters' token validator:
 * `token: (t) => verifyEksToken(t, { clusterName, now: clock.now() }).ok`.
 */
import { createHash, createHmac } from 'node:crypto';

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** The longest `X-Amz-Expires` the authenticator takes (15 minutes). */
const MAX_EXPIRES_SECONDS = 900;
/** Clock skew tolerated for a token signed "in the future". */
const MAX_SKEW_MS = 5 * 60_000;
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

export interface VerifyEksTokenOptions {
  /** The EKS cluster name the token must be for. */
  clusterName: string;
  /** The verifier's time (default now); inject a clock to test expiry. */
  now?: Date;
  /** The secret of the signing key (or a lookup by access key id): enables the signature check. */
  secretAccessKey?: string | ((accessKeyId: string) => string | undefined);
  /** Region the token must be signed for (default: any). */
  region?: string;
}

export type EksTokenCheck =
  | {
      ok: true;
      accessKeyId: string;
      region: string;
      signedAt: Date;
      expiresAt: Date;
      /** Whether the signature was recomputed (a secret was given). */
      signatureChecked: boolean;
    }
  | { ok: false; reason: string };

const fail = (reason: string): EksTokenCheck => ({ ok: false, reason });

function encode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** SigV4 signature of a presigned GET for the given query (without `X-Amz-Signature`). */
function sigV4(
  url: URL,
  params: [string, string][],
  headers: Record<string, string>,
  signedHeaders: string[],
  scope: { date: string; region: string; service: string },
  amzDate: string,
  secret: string,
): string {
  const canonicalQuery = params
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak === bk ? (av < bv ? -1 : 1) : ak < bk ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${headers[h]!.trim()}\n`).join('');
  const canonicalRequest = [
    'GET',
    url.pathname || '/',
    canonicalQuery,
    canonicalHeaders,
    signedHeaders.join(';'),
    EMPTY_SHA256,
  ].join('\n');
  const credentialScope = `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    credentialScope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const kDate = hmac(`AWS4${secret}`, scope.date);
  const kRegion = hmac(kDate, scope.region);
  const kService = hmac(kRegion, scope.service);
  const kSigning = hmac(kService, 'aws4_request');
  return hmac(kSigning, stringToSign).toString('hex');
}

/** Parses `YYYYMMDDTHHMMSSZ`. */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Decodes an EKS token to its presigned URL (throws on a malformed token). */
export function decodeEksToken(token: string): URL {
  if (!token.startsWith(EKS_TOKEN_PREFIX)) throw new Error(`missing the ${EKS_TOKEN_PREFIX} prefix`);
  const payload = token.slice(EKS_TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(payload)) throw new Error('not base64url without padding');
  return new URL(Buffer.from(payload, 'base64url').toString('utf8'));
}

export function verifyEksToken(token: string, options: VerifyEksTokenOptions): EksTokenCheck {
  let url: URL;
  try {
    url = decodeEksToken(token);
  } catch (error) {
    return fail((error as Error).message);
  }
  const q = url.searchParams;
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail('not an http(s) URL');
  if ((url.pathname || '/') !== '/') return fail('the path is not /');
  if (q.get('Action') !== 'GetCallerIdentity') return fail('Action is not GetCallerIdentity');
  if (q.get('Version') !== '2011-06-15') return fail('Version is not 2011-06-15');
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') return fail('X-Amz-Algorithm is not AWS4-HMAC-SHA256');

  const credential = (q.get('X-Amz-Credential') ?? '').split('/');
  if (credential.length !== 5 || credential[3] !== 'sts' || credential[4] !== 'aws4_request') {
    return fail('X-Amz-Credential is not <key>/<date>/<region>/sts/aws4_request');
  }
  const [accessKeyId, scopeDate, region] = credential as [string, string, string, string, string];
  if (!accessKeyId || !/^\d{8}$/.test(scopeDate) || !region) return fail('X-Amz-Credential is malformed');
  if (options.region !== undefined && region !== options.region) return fail(`signed for region ${region}`);

  const amzDate = q.get('X-Amz-Date') ?? '';
  const signedAt = parseAmzDate(amzDate);
  if (!signedAt) return fail('X-Amz-Date is not YYYYMMDDTHHMMSSZ');
  if (amzDate.slice(0, 8) !== scopeDate) return fail('X-Amz-Date and the credential scope disagree');
  const expiresText = q.get('X-Amz-Expires') ?? '';
  const expires = /^\d+$/.test(expiresText) ? Number(expiresText) : Number.NaN;
  if (!(expires > 0 && expires <= MAX_EXPIRES_SECONDS))
    return fail(`X-Amz-Expires is not 1..${MAX_EXPIRES_SECONDS}`);

  const signedHeaders = (q.get('X-Amz-SignedHeaders') ?? '').split(';').filter(Boolean);
  if (!signedHeaders.includes('host')) return fail('host is not a signed header');
  if (!signedHeaders.includes(CLUSTER_ID_HEADER)) return fail(`${CLUSTER_ID_HEADER} is not a signed header`);
  const signature = q.get('X-Amz-Signature') ?? '';
  if (!/^[0-9a-f]{64}$/.test(signature)) return fail('X-Amz-Signature is not 64 hex digits');

  const now = options.now ?? new Date();
  const expiresAt = new Date(signedAt.getTime() + expires * 1000);
  if (now.getTime() > expiresAt.getTime()) return fail('expired');
  if (signedAt.getTime() - now.getTime() > MAX_SKEW_MS) return fail('signed in the future');

  const secret =
    typeof options.secretAccessKey === 'function'
      ? options.secretAccessKey(accessKeyId)
      : options.secretAccessKey;
  if (secret !== undefined) {
    const headers: Record<string, string> = { host: url.host, [CLUSTER_ID_HEADER]: options.clusterName };
    const unknown = signedHeaders.find((h) => headers[h] === undefined);
    if (unknown) return fail(`unexpected signed header ${unknown}`);
    const params = [...q.entries()].filter(([k]) => k !== 'X-Amz-Signature');
    const expected = sigV4(
      url,
      params,
      headers,
      signedHeaders,
      { date: scopeDate, region, service: 'sts' },
      amzDate,
      secret,
    );
    if (expected !== signature) return fail('the signature does not match (another cluster, or another key)');
  }
  return { ok: true, accessKeyId, region, signedAt, expiresAt, signatureChecked: secret !== undefined };
}
