/**
 * The benchmarks' environment, set before any other module is evaluated (imported first by
 * `main.ts`; ES modules evaluate their imports in order): no metadata servers, and no EMF
 * metric lines from planners and workers drowning the report (Powertools Metrics reads the
 * variable when its module loads).
 */
process.env.AWS_EC2_METADATA_DISABLED = 'true';
process.env.METADATA_SERVER_DETECTION = 'none';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
