/**
 * The taggers of a run, one per configured cloud, each imported and created on first use
 * so a run loads only the SDKs of the clouds its clusters are in. Kubeconfig clusters
 * have no cloud resource to tag: `for('kubeconfig')` is `undefined` and the tag plan lists
 * them as not taggable, with no changes and no findings.
 */
import type { AdapterContext } from '../clouds/context.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { CloudId } from '../model.ts';
import type { ClusterTagger, TaggerSet } from './port.ts';

export function createTaggers(config: FleetConfig, ctx: AdapterContext): TaggerSet {
  const made = new Map<CloudId, Promise<ClusterTagger | undefined>>();
  const make = (cloud: CloudId): Promise<ClusterTagger | undefined> => {
    const { aws, gcp, azure } = config.clouds;
    switch (cloud) {
      case 'aws':
        return aws
          ? import('../clouds/aws/tags.ts').then((m) => m.createTagger(aws, ctx))
          : Promise.resolve(undefined);
      case 'gcp':
        return gcp
          ? import('../clouds/gcp/tags.ts').then((m) => m.createTagger(gcp, ctx))
          : Promise.resolve(undefined);
      case 'azure':
        return azure
          ? import('../clouds/azure/tags.ts').then((m) => m.createTagger(azure, ctx))
          : Promise.resolve(undefined);
      case 'kubeconfig':
        return Promise.resolve(undefined);
    }
  };
  return {
    for(cloud) {
      let tagger = made.get(cloud);
      if (!tagger) {
        tagger = make(cloud);
        made.set(cloud, tagger);
      }
      return tagger;
    },
    async close() {
      const all = await Promise.allSettled(made.values());
      made.clear();
      for (const t of all) if (t.status === 'fulfilled') await t.value?.close();
    },
  };
}
