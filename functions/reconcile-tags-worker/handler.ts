/**
 * `reconcile-tags-worker`: consumes the `reconcile-tags` queue; each item plans one cluster's
 * tags afresh and writes them (the planner enqueues only when it applies, within the change limit).
 */
import { TAGS_JOB, type TagJobDeps, tagWork } from '../../shared/jobs/tags.ts';
import { systemClock } from '../../shared/ports.ts';
import { deployedConfig, logger } from '../../shared/runtime/lambda.ts';
import { workerHandler } from '../../shared/runtime/worker.ts';
import { stateConfig } from '../../shared/state/config.ts';
import { openStateStore } from '../../shared/state/index.ts';
import { createTaggers } from '../../shared/tags/taggers.ts';

export const handler = workerHandler(tagWork, {
  open: async (): Promise<TagJobDeps> => {
    const config = await deployedConfig();
    return {
      config,
      store: await openStateStore(stateConfig(config)),
      taggers: createTaggers(config, { logger }),
      logger,
      clock: systemClock,
    };
  },
  close: async (deps) => {
    await deps.taggers.close();
    await deps.store.close();
  },
  notifyJob: TAGS_JOB,
});
