/**
 * The KMS {@link DigestSigner}: an asymmetric KMS key (`ECC_NIST_P256`, `SIGN_VERIFY`) of the
 * regional deployment signs each hourly audit digest; the private key never leaves KMS.
 *
 * The key is named by key or alias ARN (`jurisdictions.<j>.audit.digestKey`); its region, the
 * ARN's, is where the digest's hashes go to be signed, so the residency guard judges it. Calls
 * use the base credentials (the key is in the deployment's own account), the configured
 * endpoint (moto locally), one limiter slot each, and SDK errors are wrapped once.
 *
 * `Sign` takes the message itself (`MessageType: RAW`) up to KMS's 4096-byte limit; a larger
 * digest is sent as its SHA-256 (`MessageType: DIGEST`), which for `ECDSA_SHA_256` yields the
 * same signature of the same bytes (KMS hashes a RAW message with SHA-256 first). Either way
 * `openssl dgst -sha256 -verify` checks it against the digest object's bytes.
 */
import { createHash } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import type { AwsConfig } from '../../config/schema.ts';
import type { DigestSigner } from '../../ports.ts';
import { createLimiter } from '../../runtime/concurrency.ts';
import { CloudApiError, ConfigError } from '../../runtime/errors.ts';
import type { AdapterContext } from '../context.ts';
import { baseCredentials, createRequestHandler } from './client.ts';
import { commonClientConfig, sendOptions } from './evidence.ts';
import { caller } from './sessions.ts';

/** KMS `Sign` accepts a RAW message of at most this many bytes. */
export const KMS_RAW_MESSAGE_LIMIT = 4096;

const KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z0-9-]+):(\d{12}):(key|alias)\/[A-Za-z0-9/_-]+$/;

/** The region and account of a KMS key or alias ARN. @throws ConfigError */
export function kmsKeyRegion(arn: string, path = 'audit.digestKey'): { region: string; account: string } {
  const m = KEY_ARN.exec(arn);
  if (!m) throw new ConfigError([{ path, message: 'expected a KMS key or alias ARN' }]);
  return { region: m[1]!, account: m[2]! };
}

/** A KMS signer as its caller may close it. */
export interface KmsDigestSigner extends DigestSigner {
  /** Releases the HTTP sockets. */
  close(): void;
}

/** The KMS signer of one key (`keyArn`: a key or alias ARN); its location is the ARN's region. */
export function createKmsDigestSigner(
  config: AwsConfig,
  keyArn: string,
  ctx: AdapterContext,
): KmsDigestSigner {
  const { region } = kmsKeyRegion(keyArn);
  const call = caller(createLimiter(config.concurrency), { endpoint: config.endpoint });
  const requestHandler = createRequestHandler(config);
  // A JSON protocol (like CloudWatch Logs): an HTML page fails to parse, so no HTML check is added
  // (moto labels its KMS JSON answers text/html, which that check would refuse).
  const kms = new KMSClient({
    ...commonClientConfig(config),
    ...baseCredentials(config),
    requestHandler,
    region,
  });
  let pem: Promise<string> | undefined;

  const fetchPem = async (signal: AbortSignal | undefined): Promise<string> => {
    const out = await call('GetPublicKey', `kms key ${keyArn}`, signal, () =>
      kms.send(new GetPublicKeyCommand({ KeyId: keyArn }), sendOptions(signal)),
    );
    // KeySpec, or its deprecated twin CustomerMasterKeySpec (all moto 5.2.1 sends).
    const spec = out.KeySpec ?? out.CustomerMasterKeySpec;
    if (!out.PublicKey || spec !== 'ECC_NIST_P256' || out.KeyUsage !== 'SIGN_VERIFY') {
      throw new CloudApiError(
        `kms key ${keyArn} is ${spec ?? 'of unknown spec'} for ${out.KeyUsage ?? 'unknown use'}, not ECC_NIST_P256 for SIGN_VERIFY`,
        { cloud: 'aws', operation: 'GetPublicKey', retryable: false },
      );
    }
    const b64 = Buffer.from(out.PublicKey).toString('base64');
    return `-----BEGIN PUBLIC KEY-----\n${b64.match(/.{1,64}/g)!.join('\n')}\n-----END PUBLIC KEY-----\n`;
  };

  return {
    keyId: keyArn,
    algorithm: 'ECDSA_SHA_256',
    async location() {
      return { cloud: 'aws', region };
    },
    async sign(message, opts = {}) {
      const { signal } = opts;
      const raw = message.byteLength <= KMS_RAW_MESSAGE_LIMIT;
      const out = await call('Sign', `kms key ${keyArn}`, signal, () =>
        kms.send(
          new SignCommand({
            KeyId: keyArn,
            Message: raw ? message : createHash('sha256').update(message).digest(),
            MessageType: raw ? 'RAW' : 'DIGEST',
            SigningAlgorithm: 'ECDSA_SHA_256',
          }),
          sendOptions(signal),
        ),
      );
      if (!out.Signature) {
        throw new CloudApiError(`kms key ${keyArn}: Sign answered without a signature`, {
          cloud: 'aws',
          operation: 'Sign',
          retryable: false,
        });
      }
      return out.Signature;
    },
    publicKeyPem(opts = {}) {
      if (!pem) {
        const pending = fetchPem(opts.signal);
        pem = pending;
        pending.catch(() => {
          if (pem === pending) pem = undefined;
        });
        ctx.logger.debug('Digest public key requested', { key: keyArn });
      }
      return pem;
    },
    close() {
      kms.destroy();
      requestHandler.destroy();
    },
  };
}

/** Provider permissions of this adapter's calls (shared/clouds/permissions.ts). */
export const PERMISSIONS: readonly import('../permissions.ts').PermissionGrant[] = [
  {
    provider: 'aws',
    holder: 'function',
    capability: 'digest-sign',
    permission: 'kms:Sign',
    calls: ['kms:Sign'],
    why: "sign each hourly audit digest with the jurisdiction's asymmetric KMS key (hashes only, no log content)",
  },
  {
    provider: 'aws',
    holder: 'function',
    capability: 'digest-sign',
    permission: 'kms:GetPublicKey',
    calls: ['kms:GetPublicKey'],
    why: 'publish the public key beside the digests, so an auditor verifies them offline',
  },
];
