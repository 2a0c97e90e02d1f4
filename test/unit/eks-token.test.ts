/**
 * EKS bearer tokens: the format `aws eks get-token` produces and the EKS authenticator
 * accepts, checked against an independent SigV4 implementation (`test/sandbox/eks-token.ts`).
 */
import { describe, expect, it } from 'vitest';
import {
  CLUSTER_ID_HEADER,
  EKS_TOKEN_PREFIX,
  eksToken,
  PRESIGN_EXPIRES_SECONDS,
  stsEndpoint,
} from '../../shared/clouds/aws/kube.ts';
import { decodeEksToken, verifyEksToken } from '../sandbox/eks-token.ts';

// Obvious placeholders (the emulators' "testing" convention), nothing key-shaped.
const credentials = {
  accessKeyId: 'testing-access-key',
  secretAccessKey: 'testing-secret-key',
};
const session = {
  ...credentials,
  accessKeyId: 'testing-session-key',
  sessionToken: 'testing-session-token',
};
const AT = new Date('2025-03-14T09:26:53Z');

async function mint(overrides: Partial<Parameters<typeof eksToken>[0]> = {}) {
  return eksToken({ clusterName: 'prod-eu', region: 'eu-central-1', credentials, now: AT, ...overrides });
}

describe('eks token', () => {
  it('is k8s-aws-v1. + base64url without padding of a presigned GetCallerIdentity URL', async () => {
    const token = await mint();
    expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
    const payload = token.slice(EKS_TOKEN_PREFIX.length);
    expect(payload).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(payload).not.toContain('=');

    const url = new URL(Buffer.from(payload, 'base64url').toString('utf8'));
    expect(url.origin).toBe('https://sts.eu-central-1.amazonaws.com');
    expect(url.pathname).toBe('/');
    const q = url.searchParams;
    expect(q.get('Action')).toBe('GetCallerIdentity');
    expect(q.get('Version')).toBe('2011-06-15');
    expect(q.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(q.get('X-Amz-Expires')).toBe(String(PRESIGN_EXPIRES_SECONDS));
    expect(q.get('X-Amz-Expires')).toBe('60');
    expect(q.get('X-Amz-Date')).toBe('20250314T092653Z');
    expect(q.get('X-Amz-Credential')).toBe(
      `${credentials.accessKeyId}/20250314/eu-central-1/sts/aws4_request`,
    );
    expect(q.get('X-Amz-SignedHeaders')?.split(';')).toEqual(['host', CLUSTER_ID_HEADER]);
    expect(q.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    // The header value is signed, never sent in the URL.
    expect(url.toString()).not.toContain('prod-eu');
    expect(url.toString()).not.toContain(credentials.secretAccessKey);
  });

  it('carries the session token of temporary credentials in the URL', async () => {
    const url = decodeEksToken(await mint({ credentials: session }));
    expect(url.searchParams.get('X-Amz-Security-Token')).toBe(session.sessionToken);
    expect(url.searchParams.get('X-Amz-Credential')?.startsWith(`${session.accessKeyId}/`)).toBe(true);
  });

  it('is signed by SigV4 for the cluster name (an independent implementation agrees)', async () => {
    const token = await mint({ credentials: session });
    const check = verifyEksToken(token, {
      clusterName: 'prod-eu',
      now: AT,
      secretAccessKey: session.secretAccessKey,
      region: 'eu-central-1',
    });
    expect(check).toMatchObject({ ok: true, signatureChecked: true, region: 'eu-central-1' });
    // Presented to another cluster, or checked with another key: refused.
    expect(
      verifyEksToken(token, { clusterName: 'other', now: AT, secretAccessKey: session.secretAccessKey }),
    ).toEqual({
      ok: false,
      reason: expect.stringMatching(/signature/),
    });
    expect(
      verifyEksToken(token, { clusterName: 'prod-eu', now: AT, secretAccessKey: 'not-the-key' }).ok,
    ).toBe(false);
  });

  it('expires X-Amz-Expires seconds after X-Amz-Date', async () => {
    const token = await mint();
    const at = (ms: number) =>
      verifyEksToken(token, { clusterName: 'prod-eu', now: new Date(AT.getTime() + ms) });
    expect(at(0).ok).toBe(true);
    expect(at(60_000).ok).toBe(true);
    expect(at(60_001)).toEqual({ ok: false, reason: 'expired' });
    expect(at(-10 * 60_000)).toEqual({ ok: false, reason: 'signed in the future' });
    const ok = at(1_000);
    expect(ok.ok && ok.expiresAt.toISOString()).toBe('2025-03-14T09:27:53.000Z');
  });

  it('refuses malformed tokens with a reason', async () => {
    const token = await mint();
    const check = (t: string) => verifyEksToken(t, { clusterName: 'prod-eu', now: AT });
    expect(check(token.replace(EKS_TOKEN_PREFIX, 'k8s-aws-v2.'))).toEqual({
      ok: false,
      reason: expect.stringMatching(/prefix/),
    });
    expect(check(`${token}==`)).toEqual({ ok: false, reason: expect.stringMatching(/base64url/) });
    const reencode = (edit: (url: URL) => void) => {
      const url = decodeEksToken(token);
      edit(url);
      return EKS_TOKEN_PREFIX + Buffer.from(url.toString()).toString('base64url');
    };
    expect(check(reencode((u) => u.searchParams.set('Action', 'AssumeRole'))).ok).toBe(false);
    expect(check(reencode((u) => u.searchParams.set('X-Amz-SignedHeaders', 'host')))).toEqual({
      ok: false,
      reason: 'x-k8s-aws-id is not a signed header',
    });
    expect(
      check(
        reencode((u) => u.searchParams.set('X-Amz-Credential', 'AKID/20250314/eu-central-1/s3/aws4_request')),
      ).ok,
    ).toBe(false);
    expect(verifyEksToken(token, { clusterName: 'prod-eu', now: AT, region: 'us-east-1' }).ok).toBe(false);
  });

  it('is signed for the configured AWS endpoint (an emulator) when there is one', async () => {
    const url = decodeEksToken(await mint({ endpoint: 'http://127.0.0.1:4566' }));
    expect(url.origin).toBe('http://127.0.0.1:4566');
    expect(url.searchParams.get('X-Amz-Credential')).toContain('/eu-central-1/sts/');
    expect(stsEndpoint('cn-north-1').hostname).toBe('sts.cn-north-1.amazonaws.com.cn');
    // The host (with its port) is what was signed.
    const token = await mint({ endpoint: 'http://127.0.0.1:4566' });
    expect(
      verifyEksToken(token, { clusterName: 'prod-eu', now: AT, secretAccessKey: credentials.secretAccessKey })
        .ok,
    ).toBe(true);
  });
});
