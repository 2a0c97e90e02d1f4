import { ConfigError, type ConfigIssue } from '../../shared/runtime/errors.ts';

/** The issues of the `ConfigError` that `fn` throws; fails when it throws none (or another error). */
export function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
