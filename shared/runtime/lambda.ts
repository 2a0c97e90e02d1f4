/**
 * The one way a Lambda handler is built: middy with Powertools Logger (Lambda
 * context in every record; the invocation event, when logged, redacted), an error boundary that logs once and rethrows, and an
 * abort signal that fires shortly before the function times out.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { type ConfigSource, configSourceFromEnv } from '../config/appconfig.ts';
import type { FleetConfig } from '../config/schema.ts';
import type { StateStore } from '../ports.ts';
import { stateConfig } from '../state/config.ts';
import { openStateStore } from '../state/index.ts';
import { errorInfo } from './errors.ts';
import { recordHeartbeat, type ScheduledJob } from './heartbeat.ts';
import { redactEventForLog } from './redact-event.ts';

/** Module-scope logger: `POWERTOOLS_SERVICE_NAME` is the function's kebab-case name. */
export const logger = new Logger({ serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? 'fleetward' });

/** Milliseconds before the Lambda timeout at which `signal` aborts, so jobs stop cleanly and record what they did. */
const TIMEOUT_EARLY_MS = 5_000;

export function lambdaHandler<TEvent = unknown, TResult = unknown>() {
  return (
    middy<TEvent, TResult, Error, Context>({ timeoutEarlyInMillis: TIMEOUT_EARLY_MS })
      // Powertools would log the raw event (`POWERTOOLS_LOGGER_LOG_EVENT`): HTTP requests carry
      // bearer tokens and the Event Grid secret, so the event is logged here, redacted, instead.
      .use(injectLambdaContext(logger, { resetKeys: true, logEvent: false }))
      .use({
        before: (request) => {
          if (logger.shouldLogEvent()) {
            logger.info('Lambda invocation event', { event: redactEventForLog(request.event) });
          }
        },
      })
      .use({
        onError: (request) => {
          logger.error('Handler failed', { error: errorInfo(request.error) });
        },
      })
  );
}

let configSource: ConfigSource | undefined;

/**
 * The deployed fleet config: from AWS AppConfig when `FLEETWARD_APPCONFIG_*` name it (cached for
 * `FLEETWARD_CONFIG_MAX_AGE` seconds), else the bundled file named by `FLEETWARD_CONFIG`, loaded
 * once per container. See `shared/config/appconfig.ts` for what happens when AppConfig fails.
 */
export function deployedConfig(): Promise<FleetConfig> {
  try {
    configSource ??= configSourceFromEnv(logger);
  } catch (error) {
    return Promise.reject(error);
  }
  return configSource.get();
}

let heartbeatStore: Promise<StateStore> | undefined;

/**
 * middy middleware for a scheduled function: after a successful run, records `job`'s heartbeat
 * in the deployment's state store. The store is opened once per container and kept, like the
 * SDK clients at module scope, so a run pays no second connection setup. A failed heartbeat
 * write is logged, never fails the run.
 */
export function heartbeat(job: ScheduledJob): MiddlewareObj {
  return {
    after: async () => {
      try {
        heartbeatStore ??= deployedConfig().then((config) => openStateStore(stateConfig(config)));
        await recordHeartbeat(await heartbeatStore, job, new Date());
      } catch (error) {
        heartbeatStore = undefined;
        logger.warn('Heartbeat not recorded', { job, error: errorInfo(error) });
      }
    },
  };
}
