/**
 * One Lambda execution environment for the local stack (`stack.ts`): a Node process whose working
 * directory is the function's unpacked package (`LAMBDA_TASK_ROOT`), which imports the handler
 * named by `_HANDLER` once (the cold start) and then runs one invocation at a time, as the Node
 * runtime does. The parent sends `{ id, event, deadline, requestId }` over IPC and gets back
 * `{ id, ok, payload }` (the result as JSON, as Lambda serialises it) or `{ id, ok: false, error }`.
 * Timeouts are the parent's job: it kills this process, as Lambda ends a timed-out environment.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Invocation {
  id: number;
  event: unknown;
  deadline: number;
  requestId: string;
}

const send = (message: unknown) => process.send?.(message);

function errorOf(error: unknown) {
  const e = error instanceof Error ? error : new Error(String(error));
  return { errorType: e.name, errorMessage: e.message, trace: (e.stack ?? '').split('\n') };
}

const taskRoot = process.env.LAMBDA_TASK_ROOT ?? process.cwd();
const spec = process.env._HANDLER ?? '';
const dot = spec.lastIndexOf('.');
const modulePath = spec.slice(0, dot);
const exportName = spec.slice(dot + 1);
// The Node runtime's lookup order for a handler module.
const file = ['.js', '.mjs', '.cjs']
  .map((ext) => join(taskRoot, `${modulePath}${ext}`))
  .find((f) => existsSync(f));

let handler: (event: unknown, context: unknown) => Promise<unknown>;
try {
  if (dot <= 0 || !file) throw new Error(`Cannot find module '${modulePath}' under ${taskRoot}`);
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const candidate = mod[exportName];
  if (typeof candidate !== 'function') throw new Error(`${modulePath}.${exportName} is not a function`);
  handler = candidate as typeof handler;
} catch (error) {
  send({ type: 'init-error', error: { ...errorOf(error), errorType: 'Runtime.ImportModuleError' } });
  process.exit(1);
}

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'local';
const region = process.env.AWS_REGION ?? 'us-east-1';
const account = process.env.FLEETWARD_STACK_ACCOUNT ?? '123456789012';

process.on('message', async (message: Invocation) => {
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${region}:${account}:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '128',
    awsRequestId: message.requestId,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME ?? `/aws/lambda/${functionName}`,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME ?? 'local',
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  try {
    const result = await handler(message.event, context);
    // Lambda hands back the JSON serialisation of the result (undefined becomes null).
    send({ id: message.id, ok: true, payload: JSON.stringify(result ?? null) });
  } catch (error) {
    send({ id: message.id, ok: false, error: errorOf(error) });
  }
});
send({ type: 'ready' });
