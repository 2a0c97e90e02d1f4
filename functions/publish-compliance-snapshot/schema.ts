import { z } from 'zod';

/**
 * Input: the daily schedule sends `{ "trigger": "schedule" }`; the event path sends
 * `{ "trigger": "event" }` after a cluster changed; a manual invoke may set `publish: false`.
 */
export const Request = z.strictObject({
  trigger: z.enum(['schedule', 'event', 'manual']).default('manual'),
  publish: z.boolean().default(true),
});
export type Request = z.infer<typeof Request>;
