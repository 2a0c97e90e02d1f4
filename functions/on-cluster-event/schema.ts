import type { z } from 'zod';
import { EksCloudTrailEventSchema } from '../../shared/events/aws.ts';

/** Input of `on-cluster-event`: an EventBridge "AWS API Call via CloudTrail" event from `aws.eks`. */
export const OnClusterEventRequest = EksCloudTrailEventSchema;

export type OnClusterEventRequest = z.infer<typeof OnClusterEventRequest>;
