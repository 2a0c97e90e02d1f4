/**
 * Builds what jobs need from a validated config: every job's wiring, re-exported for the CLI
 * and tests. The CLI and the Lambda handlers go through the same builders, so a scheduled run
 * and a local run see the same wiring.
 *
 * No Lambda handler imports this module: each imports its own job's module under `deps/`, since
 * esbuild emits a chunk for every `import()` a bundle reaches, called or not, and this module
 * reaches every job's clouds (test/meta/bundles.test.ts).
 */

export { stateConfig } from '../state/config.ts';
export { auditJobDeps, type EvidenceOptions } from './deps/audit.ts';
export { budgetJobDeps, closeBudgetJobDeps } from './deps/budgets.ts';
export { clusterJobDeps } from './deps/cluster-jobs.ts';
export { discoverDeps } from './deps/discover.ts';
export { openEventDeps } from './deps/events.ts';
export { snapshotDeps } from './deps/snapshot.ts';
