/**
 * S3's bucket owner condition on evidence buckets: every request names the account that must own
 * the bucket (`ExpectedBucketOwner`, header `x-amz-expected-bucket-owner`), and S3 refuses it with
 * 403 when another account owns it, so a renamed, deleted-and-recreated or mistyped bucket name
 * never receives evidence (Amazon S3 User Guide, "Verifying bucket ownership with bucket owner
 * condition").
 *
 * The account is `jurisdictions.<id>.evidence.aws.account` when the config names it, else the
 * account of the function's own credentials: STS `GetCallerIdentity` (which needs no IAM
 * permission), asked once per process and credential source and kept.
 */
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { AwsConfig } from '../../config/schema.ts';
import { CloudApiError } from '../../runtime/errors.ts';
import { baseCredentials, createRequestHandler, rejectHtmlAnswers, toCloudApiError } from './client.ts';

/** Accounts of the base credentials, per credential source (endpoint and profile), for the life of the process. */
const accounts = new Map<string, Promise<string>>();

/**
 * The account id of the base credentials of `config` (the profile of `clouds.aws.credentials`,
 * else the SDK's default chain: the Lambda role), asked of STS in `region` once per process.
 * A failed answer is not kept: the next caller asks again.
 */
export function callerAccount(config: AwsConfig, region: string): Promise<string> {
  const key = [config.endpoint ?? '', config.credentials?.profile ?? '', config.credentials?.file ?? ''].join(
    '|',
  );
  const held = accounts.get(key);
  if (held) return held;
  const asked = (async () => {
    const requestHandler = createRequestHandler(config);
    const sts = rejectHtmlAnswers(
      new STSClient({
        maxAttempts: config.maxAttempts,
        retryMode: 'standard',
        requestHandler,
        region,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...baseCredentials(config),
      }),
    );
    try {
      const out = await sts.send(new GetCallerIdentityCommand({}));
      if (!out.Account || !/^\d{12}$/.test(out.Account)) {
        throw new CloudApiError('aws GetCallerIdentity answered no account id', {
          cloud: 'aws',
          operation: 'GetCallerIdentity',
          retryable: false,
        });
      }
      return out.Account;
    } catch (error) {
      throw toCloudApiError(error, 'GetCallerIdentity', { endpoint: config.endpoint, region });
    } finally {
      sts.destroy();
      requestHandler.destroy();
    }
  })();
  accounts.set(key, asked);
  asked.catch(() => {
    if (accounts.get(key) === asked) accounts.delete(key);
  });
  return asked;
}

/** A client whose middleware stack `expectBucketOwner` can extend (an `S3Client`). */
interface WithMiddlewareStack {
  middlewareStack: {
    add(
      middleware: (
        next: (args: { input: object }) => Promise<unknown>,
      ) => (args: { input: object }) => Promise<unknown>,
      options: { step: 'initialize'; name: string; priority: 'high' },
    ): void;
  };
}

/** The name of the middleware {@link expectBucketOwner} adds (tests look for it). */
export const EXPECTED_BUCKET_OWNER_MIDDLEWARE = 'fleetwardExpectedBucketOwner';

/**
 * Makes every command `client` sends carry `ExpectedBucketOwner: await owner()` (unless the
 * command sets one itself). Added to the client rather than to each call, so an S3 call added to
 * an evidence store later cannot forget it.
 */
export function expectBucketOwner<C extends object>(client: C, owner: () => Promise<string>): C {
  (client as unknown as WithMiddlewareStack).middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { ExpectedBucketOwner?: string };
      input.ExpectedBucketOwner ??= await owner();
      return next(args);
    },
    // Before serialization: the header is written from the input.
    { step: 'initialize', name: EXPECTED_BUCKET_OWNER_MIDDLEWARE, priority: 'high' },
  );
  return client;
}
