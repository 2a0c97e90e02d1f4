/**
 * STS `GetWebIdentityToken` (AWS IAM outbound identity federation) for the sandbox: moto 5.2.1
 * raises NotImplementedError for it, so the AWS proxy answers it here.
 *
 * Request (query protocol, API reference `API_GetWebIdentityToken`): `Audience.member.N` (1-10),
 * `SigningAlgorithm` (`RS256` | `ES384`, required), `DurationSeconds` (60-3600, default 300).
 * The caller is who moto says signed the request: the same signed headers are sent to moto as
 * `GetCallerIdentity`, and an assumed-role ARN becomes the role ARN, which AWS puts in `sub`.
 * The token is a real RS256 JWT signed by the local issuer (`startJwksServer`), with the claims
 * of AWS's documented sample token (IAM user guide, "Understanding token claims"): `iss`,
 * `aud`, `sub`, `iat`, `exp`, `jti`, and the `https://sts.amazonaws.com/` namespace with
 * `aws_account` and `source_region`. The answer is the `GetWebIdentityTokenResponse` XML
 * (`WebIdentityToken`, `Expiration`). The global endpoint host is refused, as AWS does.
 */
import type { OverrideHandler, ProxyResponse } from './aws-proxy.ts';
import type { JwksServer } from './oidc.ts';

const XMLNS = 'https://sts.amazonaws.com/doc/2011-06-15/';

/** What the shim issued, for tests to look at. */
export interface IssuedWebIdentityToken {
  audience: string[];
  subject: string;
  region: string | undefined;
  durationSeconds: number;
}

function queryError(status: number, code: string, message: string): ProxyResponse {
  const id = crypto.randomUUID();
  return {
    status,
    headers: { 'content-type': 'text/xml', 'x-amzn-requestid': id },
    body: `<ErrorResponse xmlns="${XMLNS}"><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${id}</RequestId></ErrorResponse>`,
  };
}

/** `arn:aws:sts::<acct>:assumed-role/<role>/<session>` -> `arn:aws:iam::<acct>:role/<role>`; others unchanged. */
export function roleArnOf(callerArn: string): string {
  const m = /^arn:([\w-]+):sts::(\d{12}):assumed-role\/([^/]+)\/.+$/.exec(callerArn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : callerArn;
}

/**
 * The override handler for `GetWebIdentityToken`, signing with `issuer`. `issued` receives
 * every token handed out.
 */
export function webIdentityTokenHandler(
  issuer: JwksServer,
  issued: IssuedWebIdentityToken[] = [],
  clock: () => number = Date.now,
): OverrideHandler {
  return async (req, { forward }) => {
    const host = String(req.headers.host ?? '');
    if (host === 'sts.amazonaws.com') {
      return queryError(
        400,
        'InvalidAction',
        'GetWebIdentityToken is not available on the STS global endpoint',
      );
    }
    const form = new URLSearchParams(req.body.toString('utf8'));
    const audience = [...form.keys()]
      .filter((k) => /^Audience\.member\.\d+$/.test(k))
      .sort((a, b) => Number(a.split('.')[2]) - Number(b.split('.')[2]))
      .map((k) => form.get(k) ?? '');
    if (
      audience.length < 1 ||
      audience.length > 10 ||
      audience.some((a) => a.length < 1 || a.length > 1000)
    ) {
      return queryError(400, 'ValidationError', 'Audience must hold 1 to 10 values of 1 to 1000 characters');
    }
    const algorithm = form.get('SigningAlgorithm');
    if (algorithm !== 'RS256' && algorithm !== 'ES384') {
      return queryError(400, 'ValidationError', 'SigningAlgorithm must be RS256 or ES384');
    }
    if (algorithm !== 'RS256') {
      return queryError(400, 'ValidationError', 'the sandbox issuer signs RS256 only');
    }
    const duration = form.has('DurationSeconds') ? Number(form.get('DurationSeconds')) : 300;
    if (!Number.isInteger(duration) || duration < 60 || duration > 3600) {
      return queryError(400, 'ValidationError', 'DurationSeconds must be between 60 and 3600');
    }

    // Who signed it: moto answers GetCallerIdentity for the same credentials.
    const who = await forward(Buffer.from('Action=GetCallerIdentity&Version=2011-06-15'));
    const callerArn = who.body?.toString().match(/<Arn>([^<]+)<\/Arn>/)?.[1];
    const account = who.body?.toString().match(/<Account>([^<]+)<\/Account>/)?.[1];
    if (who.status !== 200 || !callerArn || !account) {
      return { status: who.status, ...(who.headers ? { headers: who.headers } : {}), body: who.body ?? '' };
    }
    const subject = roleArnOf(callerArn);
    const iat = Math.floor(clock() / 1000);
    const exp = iat + duration;
    const token = await issuer.sign({
      iss: issuer.issuer,
      aud: audience.length === 1 ? audience[0] : audience,
      sub: subject,
      iat,
      exp,
      jti: crypto.randomUUID(),
      'https://sts.amazonaws.com/': {
        aws_account: account,
        ...(req.info.region ? { source_region: req.info.region } : {}),
      },
    });
    issued.push({ audience, subject, region: req.info.region, durationSeconds: duration });
    const id = crypto.randomUUID();
    return {
      status: 200,
      headers: { 'content-type': 'text/xml', 'x-amzn-requestid': id },
      body:
        `<GetWebIdentityTokenResponse xmlns="${XMLNS}"><GetWebIdentityTokenResult>` +
        `<WebIdentityToken>${token}</WebIdentityToken>` +
        `<Expiration>${new Date(exp * 1000).toISOString()}</Expiration>` +
        `</GetWebIdentityTokenResult><ResponseMetadata><RequestId>${id}</RequestId></ResponseMetadata></GetWebIdentityTokenResponse>`,
    };
  };
}
