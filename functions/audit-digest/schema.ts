import type { z } from 'zod';
import { ClusterJobRequest } from '../../shared/runtime/scope.ts';

/** Input of `audit-digest`: the schedule sends `{ "trigger": "schedule" }`; a manual invoke may name one cluster. */
export const Request = ClusterJobRequest;
export type Request = z.infer<typeof Request>;
