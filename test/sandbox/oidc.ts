/**
 * A local OIDC key server for tests: serves a JWKS on loopback and signs tokens with its key,
 * or with a second "attacker" key that is not in the JWKS (forgeries). Stands in for
 * Google's and Entra ID's signing keys.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

/** How to sign one token. */
export interface SignOptions {
  /** `attacker`: a key the JWKS does not hold, under the trusted key's `kid` (a forged signature). */
  signer?: 'trusted' | 'attacker';
  /** Header `kid`; default the trusted key's. */
  kid?: string;
  /** `iat` in seconds since the epoch; default now (ignored when the claims carry `iat`). */
  issuedAt?: number;
  /** Lifetime in seconds from `iat`; default 3600 (ignored when the claims carry `exp`). */
  ttlSec?: number;
}

/** A running JWKS server. */
export interface JwksServer {
  /** The JWKS URL (loopback). */
  url: string;
  /**
   * The issuer URL (loopback): `<issuer>/.well-known/openid-configuration` answers an OIDC
   * discovery document naming `url` as `jwks_uri`, so the server also stands in for an OIDC
   * issuer such as an AWS account's outbound-federation issuer.
   */
  issuer: string;
  /** The `kid` of the trusted key. */
  kid: string;
  /** Signs `claims` as an RS256 JWT. */
  sign(claims: JWTPayload, opts?: SignOptions): Promise<string>;
  /** Signs `claims` with the attacker key (same `kid`, different key). */
  forge(claims: JWTPayload, opts?: Omit<SignOptions, 'signer'>): Promise<string>;
  /** How many times the JWKS was fetched. */
  fetches(): number;
  close(): Promise<void>;
}

/** Starts a JWKS server on 127.0.0.1 with a fresh RS256 key pair (and an attacker pair). */
export async function startJwksServer(): Promise<JwksServer> {
  const trusted = await generateKeyPair('RS256', { extractable: true });
  const attacker = await generateKeyPair('RS256', { extractable: true });
  const kid = `fleetward-test-${Math.random().toString(36).slice(2, 10)}`;
  const jwk = { ...(await exportJWK(trusted.publicKey)), kid, alg: 'RS256', use: 'sig' };
  const jwks = JSON.stringify({ keys: [jwk] });
  let fetches = 0;

  let issuer = '';
  const server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (req.url?.split('?')[0] === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          issuer,
          jwks_uri: `${issuer}/certs`,
          response_types_supported: ['id_token'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
      return;
    }
    fetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(jwks);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  issuer = `http://127.0.0.1:${port}`;

  const sign = async (claims: JWTPayload, opts: SignOptions = {}): Promise<string> => {
    const key = opts.signer === 'attacker' ? attacker.privateKey : trusted.privateKey;
    const iat = claims.iat ?? opts.issuedAt ?? Math.floor(Date.now() / 1000);
    const exp = claims.exp ?? iat + (opts.ttlSec ?? 3600);
    return new SignJWT({ ...claims, iat, exp })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: opts.kid ?? kid })
      .sign(key);
  };

  return {
    url: `${issuer}/certs`,
    issuer,
    kid,
    sign,
    forge: (claims, opts = {}) => sign(claims, { ...opts, signer: 'attacker' }),
    fetches: () => fetches,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Claims of a Google-signed Pub/Sub push token for `audience` and service account `email`. */
export function googlePushClaims(audience: string, email: string): JWTPayload {
  return {
    iss: 'https://accounts.google.com',
    aud: audience,
    azp: '100000000000000000001',
    sub: '100000000000000000001',
    email,
    email_verified: true,
  };
}

/**
 * The application id of Azure Event Grid's own Entra ID application (Microsoft's documented
 * constant for Entra-protected webhook delivery); Event Grid's delivery tokens name it in `azp`
 * (v2.0) or `appid` (v1.0).
 */
export const EVENT_GRID_APP_ID = '4962773b-9cdb-44cf-a8bf-237846a00ab7';

/** Claims of an Entra ID v2 access token Event Grid gets for `audience` in `tenantId`. */
export function entraClaims(tenantId: string, audience: string): JWTPayload {
  return {
    iss: `https://login.microsoftonline.com/${tenantId}/v2.0`,
    aud: audience,
    tid: tenantId,
    sub: 'eventgrid-delivery',
    azp: EVENT_GRID_APP_ID,
    ver: '2.0',
  };
}

/** The same token in the v1.0 shape: issuer `sts.windows.net`, the client in `appid`, no `azp`. */
export function entraV1Claims(tenantId: string, audience: string): JWTPayload {
  const { azp: _azp, ...v2 } = entraClaims(tenantId, audience);
  return { ...v2, iss: `https://sts.windows.net/${tenantId}/`, appid: EVENT_GRID_APP_ID, ver: '1.0' };
}
