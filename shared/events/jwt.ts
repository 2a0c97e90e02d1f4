/**
 * Bearer-token verification shared by the Pub/Sub push (Google OIDC) and Event Grid
 * (Entra ID) endpoints: RS256 only, signature against a remote JWKS, `aud`, `iss`, `exp`/`iat`.
 */
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { EventAuthError } from './model.ts';

/** One JWKS client per URL for the life of the process: keys are fetched once and refreshed by jose. */
const jwksByUrl = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

function remoteJwks(url: string): ReturnType<typeof createRemoteJWKSet> {
  let jwks = jwksByUrl.get(url);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(url), { timeoutDuration: 5_000 });
    jwksByUrl.set(url, jwks);
  }
  return jwks;
}

/** What a bearer token must satisfy. */
export interface BearerCheck {
  jwksUrl: string;
  audience: string | string[];
  issuers: string[];
  /** Seconds of clock skew tolerated on `exp`, `iat` and `nbf` (default 60). */
  clockToleranceSec?: number | undefined;
  /** The time to verify against (tests); default now. */
  now?: Date | undefined;
  /** Oldest `iat` accepted, in seconds before now (plus the tolerance); default: only `exp` limits. */
  maxTokenAgeSec?: number | undefined;
}

/** The token from an `Authorization: Bearer <token>` header. */
export function bearerToken(authorization: string | undefined): string {
  const match = /^Bearer[ \t]+([A-Za-z0-9\-_.]+)\s*$/i.exec(authorization ?? '');
  if (!match?.[1])
    throw new EventAuthError(authorization ? 'authorization is not a bearer token' : 'no authorization');
  return match[1];
}

/**
 * Verifies an `Authorization: Bearer` JWT and returns its claims. Every failure (no header,
 * bad signature, wrong audience or issuer, expired or issued too long ago, JWKS unreachable) is an `EventAuthError`
 * whose `reason` says which, for logs.
 */
export async function verifyBearer(
  authorization: string | undefined,
  check: BearerCheck,
): Promise<JWTPayload> {
  const token = bearerToken(authorization);
  try {
    const { payload } = await jwtVerify(token, remoteJwks(check.jwksUrl), {
      algorithms: ['RS256'],
      audience: check.audience,
      issuer: check.issuers,
      clockTolerance: check.clockToleranceSec ?? 60,
      currentDate: check.now,
      requiredClaims: ['exp', 'iat'],
      ...(check.maxTokenAgeSec !== undefined ? { maxTokenAge: check.maxTokenAgeSec } : {}),
    });
    return payload;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const reason = typeof code === 'string' ? `${code}: ${(error as Error).message}` : String(error);
    throw new EventAuthError(reason, { cause: error });
  }
}
