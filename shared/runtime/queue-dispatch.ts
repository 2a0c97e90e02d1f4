/**
 * The dispatcher of a deployed planner, apart from shared/runtime/dispatch.ts: this module
 * reaches the SQS client (through a lazy `import()`, for which esbuild emits a chunk whether or
 * not it is called), and only the planners that hand items to a queue (capability
 * `queue-send`) may carry it; the workers import the work-item schema from dispatch.ts.
 */
import { type Dispatcher, inProcess, queued } from './dispatch.ts';

/**
 * The dispatcher of a deployed planner: the job's queue when the deployment sets
 * `FLEETWARD_DISPATCH=queue` (serverless.yml does, with each queue's URL), else in-process.
 */
export async function deployedDispatcher(
  concurrency: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Dispatcher> {
  if (env.FLEETWARD_DISPATCH !== 'queue') return inProcess(concurrency);
  // The deployment's own SQS queues, not a cloud of the fleet: not through the cloud registry.
  const { createWorkQueue } = await import('../clouds/aws/queue.ts');
  return queued(createWorkQueue({ env }));
}
