/**
 * The bucket locator jobs use: it reads a Velero BackupStorageLocation's `provider` and
 * hands the bucket to the cloud that hosts it (S3, Cloud Storage, an Azure storage
 * account). Each cloud's module (and its SDK) is imported on its first bucket only.
 *
 * Providers are Velero's plugin names: `aws`, `gcp`, `azure`, with or without the
 * `velero.io/` prefix (any case). A provider of a cloud missing from `clouds` is refused:
 * the locator never falls back to ambient credentials or public endpoints the config did
 * not name. Every cloud answers the single region that holds the data, or rejects: see
 * `shared/clouds/<cloud>/buckets.ts` for what each refuses (multi-region GCS buckets,
 * geo-redundant Azure accounts, S3-compatible storage outside AWS).
 */
import type { FleetConfig } from '../config/schema.ts';
import type { RegionCloud } from '../model.ts';
import type { BucketLocator, Log } from '../ports.ts';
import { FleetwardError } from '../runtime/errors.ts';

const PROVIDERS: Record<string, RegionCloud> = { aws: 'aws', gcp: 'gcp', azure: 'azure' };

/** The cloud of a Velero provider name (`aws`, `velero.io/gcp`, ...), or `undefined` for any other provider. */
export function cloudOfProvider(provider: string): RegionCloud | undefined {
  const name = provider
    .trim()
    .toLowerCase()
    .replace(/^velero\.io\//, '');
  return Object.hasOwn(PROVIDERS, name) ? PROVIDERS[name] : undefined;
}

/** One locator per cloud, created when that cloud's first bucket is located. */
export function createBucketLocator(config: FleetConfig, ctx: { logger: Log }): BucketLocator {
  const locators = new Map<RegionCloud, Promise<BucketLocator>>();

  const load = (cloud: RegionCloud): Promise<BucketLocator> => {
    const { aws, gcp, azure } = config.clouds;
    switch (cloud) {
      case 'aws':
        if (aws) return import('./aws/buckets.ts').then((m) => m.createBucketLocator(aws, ctx));
        break;
      case 'gcp':
        if (gcp) return import('./gcp/buckets.ts').then((m) => m.createBucketLocator(gcp, ctx));
        break;
      case 'azure':
        if (azure) return import('./azure/buckets.ts').then((m) => m.createBucketLocator(azure, ctx));
        break;
    }
    return Promise.reject(
      new FleetwardError(
        `backup storage locations of provider ${cloud} need clouds.${cloud} in the configuration (its endpoint and credentials)`,
      ),
    );
  };

  const locatorOf = (cloud: RegionCloud): Promise<BucketLocator> => {
    let locator = locators.get(cloud);
    if (!locator) {
      locator = load(cloud);
      locators.set(cloud, locator);
      // A failed set-up (a config error, a module that did not load) is reported again by the next bucket.
      locator.catch(() => {
        if (locators.get(cloud) === locator) locators.delete(cloud);
      });
    }
    return locator;
  };

  return {
    async locate(bucket, cluster, options) {
      options?.signal?.throwIfAborted();
      const cloud = cloudOfProvider(bucket.provider);
      if (!cloud) {
        throw new FleetwardError(
          `backup storage location provider "${bucket.provider}" is not supported (expected aws, gcp or azure, optionally prefixed velero.io/)`,
        );
      }
      const locator = await locatorOf(cloud);
      return locator.locate(bucket, cluster, options);
    },
  };
}
