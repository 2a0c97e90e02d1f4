import { z } from 'zod';

/** Input: the schedule sends `{ "trigger": "schedule" }`; a manual invoke may ask for a plan only. */
export const Request = z.strictObject({
  trigger: z.enum(['schedule', 'manual']).default('manual'),
  /** Plan only, even in prod. */
  dryRun: z.boolean().optional(),
});
export type Request = z.infer<typeof Request>;
