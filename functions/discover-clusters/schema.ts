import { z } from 'zod';
import { CLOUDS } from '../../shared/model.ts';

/** Input of `discover-clusters`: the schedule sends `{ "trigger": "schedule" }`; a manual invoke may narrow the clouds. */
export const DiscoverRequest = z.strictObject({
  trigger: z.enum(['schedule', 'manual']).default('manual'),
  clouds: z.array(z.enum(CLOUDS)).min(1).optional(),
});

export type DiscoverRequest = z.infer<typeof DiscoverRequest>;
