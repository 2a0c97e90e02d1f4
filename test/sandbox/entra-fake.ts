/**
 * A local Microsoft Entra ID token endpoint (https, the sandbox's self-signed CA) for workload
 * identity federation: an app registration holds federated identity credentials (issuer,
 * subject, audience), and the client-credentials grant with a `client_assertion` is answered
 * only when the assertion is a JWT that one of them matches and that verifies against the
 * issuer's keys, found the way Entra finds them (the issuer's OIDC discovery document, then its
 * `jwks_uri`).
 *
 * Shapes (Microsoft identity platform reference, "OAuth 2.0 client credentials flow", third
 * case "access token request with a federated credential"; and "Workload identity
 * federation"): `POST /{tenant}/oauth2/v2.0/token` form `client_id`, `scope`,
 * `grant_type=client_credentials`,
 * `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`,
 * `client_assertion`; success `{ token_type: "Bearer", expires_in, ext_expires_in,
 * access_token }`; failure 400/401 `{ error, error_description: "AADSTS…", error_codes,
 * timestamp, trace_id, correlation_id }`. MSAL first reads
 * `GET /{tenant}/v2.0/.well-known/openid-configuration`, answered here with the fields it
 * requires (`authorization_endpoint`, `token_endpoint`, `issuer`, `jwks_uri`).
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { localCert } from './tls.ts';

/** A federated identity credential of an app registration (as `az ad app federated-credential create` takes it). */
export interface FederatedCredential {
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface EntraApp {
  tenantId: string;
  clientId: string;
  federatedCredentials: FederatedCredential[];
  /** The access token answered for this app (the ARM fake accepts exactly it). */
  accessToken: string;
}

/** One token request as the fake judged it. */
export interface EntraTokenRequest {
  tenantId: string;
  clientId: string | null;
  grantType: string | null;
  scope: string | null;
  clientAssertionType: string | null;
  /** Whether a `client_secret` was sent (it never should be). */
  clientSecret: boolean;
  /** Verified claims of the assertion, when it verified. */
  claims?: JWTPayload;
  /** The AADSTS code answered, when refused. */
  error?: string;
}

export interface EntraFake {
  /** `https://127.0.0.1:<port>`, for `authorityHost`. */
  url: string;
  /** PEM file of the CA that signed the server certificate. */
  caFile: string;
  requests: EntraTokenRequest[];
  stop(): Promise<void>;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Starts the fake for `apps`, with a certificate under `certDir`. */
export async function startEntraFake(options: { apps: EntraApp[]; certDir: string }): Promise<EntraFake> {
  const cert = localCert(join(options.certDir));
  const requests: EntraTokenRequest[] = [];
  const jwksByIssuer = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  let base = '';

  const keysOf = async (issuer: string) => {
    let keys = jwksByIssuer.get(issuer);
    if (!keys) {
      const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
        jwks_uri: string;
      };
      keys = createRemoteJWKSet(new URL(discovery.jwks_uri));
      jwksByIssuer.set(issuer, keys);
    }
    return keys;
  };

  const send = (res: import('node:http').ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
  };
  const refuse = (
    res: import('node:http').ServerResponse,
    record: EntraTokenRequest,
    status: number,
    error: string,
    code: number,
    description: string,
  ) => {
    record.error = `AADSTS${code}`;
    send(res, status, {
      error,
      error_description: `AADSTS${code}: ${description}`,
      error_codes: [code],
      timestamp: new Date()
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z'),
      trace_id: crypto.randomUUID(),
      correlation_id: crypto.randomUUID(),
    });
  };

  const server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(path);
      if (req.method === 'GET' && discovery) {
        const tenant = discovery[1]!;
        send(res, 200, {
          token_endpoint: `${base}/${tenant}/oauth2/v2.0/token`,
          token_endpoint_auth_methods_supported: [
            'client_secret_post',
            'private_key_jwt',
            'client_secret_basic',
          ],
          jwks_uri: `${base}/${tenant}/discovery/v2.0/keys`,
          response_modes_supported: ['query', 'fragment', 'form_post'],
          subject_types_supported: ['pairwise'],
          id_token_signing_alg_values_supported: ['RS256'],
          response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
          scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
          issuer: `${base}/${tenant}/v2.0`,
          authorization_endpoint: `${base}/${tenant}/oauth2/v2.0/authorize`,
          end_session_endpoint: `${base}/${tenant}/oauth2/v2.0/logout`,
          tenant_region_scope: 'EU',
        });
        return;
      }
      const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(path);
      if (req.method !== 'POST' || !token) {
        send(res, 404, { error: 'not_found' });
        return;
      }
      const tenantId = token[1]!;
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const record: EntraTokenRequest = {
        tenantId,
        clientId: form.get('client_id'),
        grantType: form.get('grant_type'),
        scope: form.get('scope'),
        clientAssertionType: form.get('client_assertion_type'),
        clientSecret: form.has('client_secret'),
      };
      requests.push(record);
      void (async () => {
        const app = options.apps.find((a) => a.tenantId === tenantId && a.clientId === record.clientId);
        if (!app) {
          return refuse(
            res,
            record,
            400,
            'unauthorized_client',
            700016,
            'Application not found in the directory.',
          );
        }
        if (record.grantType !== 'client_credentials') {
          return refuse(
            res,
            record,
            400,
            'unsupported_grant_type',
            70003,
            'The app requested an unsupported grant type.',
          );
        }
        if (record.clientAssertionType !== JWT_BEARER || !form.get('client_assertion')) {
          return refuse(
            res,
            record,
            401,
            'invalid_client',
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
          );
        }
        const assertion = form.get('client_assertion')!;
        let claims: JWTPayload | undefined;
        for (const fic of app.federatedCredentials) {
          try {
            const verified = await jwtVerify(assertion, await keysOf(fic.issuer), {
              issuer: fic.issuer,
              subject: fic.subject,
              audience: fic.audiences,
            });
            claims = verified.payload;
            break;
          } catch {
            // Try the next federated credential; none matching is AADSTS70021.
          }
        }
        if (!claims) {
          return refuse(
            res,
            record,
            400,
            'invalid_client',
            70021,
            'No matching federated identity record found for presented assertion.',
          );
        }
        record.claims = claims;
        send(res, 200, {
          token_type: 'Bearer',
          expires_in: 3599,
          ext_expires_in: 3599,
          access_token: app.accessToken,
        });
      })().catch((error: unknown) =>
        send(res, 500, { error: 'server_error', error_description: String(error) }),
      );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: base,
    caFile: cert.caFile,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
