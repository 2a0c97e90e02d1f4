/**
 * A local Serverless Framework plugin: generates the deployment of one role from the function
 * catalogue, the provider permission grants and the fleet config (shared/deploy/generate.ts).
 * At the start of `package` (and so of `deploy`) it
 * - validates the config (`FLEETWARD_CONFIG`, else fleet.yaml) with the CLI's loader and fails
 *   with the path of every bad field;
 * - keeps only the functions of `--param role=home` or `--param role=regional --param
 *   jurisdiction=<id>` (refusing a `--region` outside that jurisdiction), and generates their
 *   queues, alarms and one IAM role each;
 * - names the stack, the functions, the roles, the table and the queues after the deployment
 *   (`fleetward-<stage>-<home|jurisdiction>`), so deployments sharing a region never collide;
 * - adds the AppConfig resources carrying the config, and packages the validated file.
 * Before the template is written it checks that every literal `*Name` of the template carries
 * the deployment prefix, and sets the HTTP API stage throttling (the framework's
 * `provider.httpApi` has no setting for it). Node 24 imports the TypeScript modules as they are.
 */
'use strict';

const { readFile } = require('node:fs/promises');
const { isAbsolute, relative, resolve } = require('node:path');

const num = (value, name) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`param ${name}: expected a whole number (got "${value}")`);
  return n;
};

class FleetwardDeployment {
  constructor(serverless, _options, { log } = {}) {
    this.serverless = serverless;
    this.log = log;
    this.hooks = {
      'before:package:initialize': () => this.generate(),
      'before:package:finalize': () => this.finalize(),
    };
  }

  fail(message) {
    throw new this.serverless.classes.Error(message);
  }

  async generate() {
    const sls = this.serverless;
    const service = sls.service;
    const settings = service.custom?.fleetward ?? {};
    const [{ loadConfig }, { parse }, generate, { FUNCTIONS }, grants] = await Promise.all([
      import('../config/load.ts'),
      import('yaml'),
      import('./generate.ts'),
      import('./functions.ts'),
      import('../clouds/grants.ts'),
    ]);
    const root = sls.serviceDir;
    const file = process.env.FLEETWARD_CONFIG || 'fleet.yaml';
    const packaged = relative(root, resolve(root, file));
    if (packaged.startsWith('..') || isAbsolute(packaged)) {
      this.fail(`FLEETWARD_CONFIG: ${file} is outside the service directory, so it cannot be packaged`);
    }
    let config;
    let rawConfig;
    try {
      config = await loadConfig(resolve(root, packaged));
      rawConfig = parse(await readFile(resolve(root, packaged), 'utf8'));
    } catch (error) {
      if (error?.name !== 'ConfigError') throw error;
      const lines = error.issues.map((i) => `  ${i.path}: ${i.message}`);
      this.fail(`${error.message}\n${lines.join('\n')}`);
    }
    let plan;
    try {
      plan = generate.planDeployment({
        service: service.service,
        stage: service.provider.stage,
        region: service.provider.region,
        params: {
          role: String(settings.role ?? ''),
          jurisdiction: String(settings.jurisdiction ?? ''),
          azureClientId: String(settings.azureClientId ?? ''),
        },
        config,
        rawConfig,
        functions: service.functions,
        catalogue: FUNCTIONS,
        grants: grants.allGrants(),
        endpointConcurrency: num(settings.endpointConcurrency, 'endpointConcurrency'),
        queueAgeAlarmSeconds: num(settings.queueAgeAlarmSeconds, 'queueAgeAlarmSeconds'),
      });
    } catch (error) {
      if (error?.name === 'DeployConfigError' || /^param /.test(error?.message)) this.fail(error.message);
      throw error;
    }
    for (const name of plan.drop) delete service.functions[name];
    service.provider.stackName = plan.stackName;
    for (const [name, patch] of Object.entries(plan.functions)) {
      const fn = service.functions[name];
      fn.name = patch.name;
      if (patch.events) fn.events = patch.events;
      fn.role = patch.role;
      fn.environment = { ...fn.environment, ...patch.environment };
      if (patch.reservedConcurrency !== undefined) fn.reservedConcurrency = patch.reservedConcurrency;
    }
    service.provider.environment = {
      ...service.provider.environment,
      ...plan.environment,
      FLEETWARD_CONFIG: packaged,
    };
    service.package.patterns = [
      ...(service.package.patterns ?? []).filter((p) => p !== 'fleet.yaml'),
      packaged,
    ];
    service.resources = service.resources ?? {};
    service.resources.Resources = service.resources.Resources ?? {};
    const resources = service.resources.Resources;
    const twice = Object.keys(plan.resources).filter((id) => id in resources);
    if (twice.length > 0)
      this.fail(`resources ${twice.join(', ')}: generated, so serverless.yml must not define them`);
    Object.assign(resources, plan.resources);
    this.log?.notice?.(
      `fleetward: ${plan.role}${plan.jurisdiction ? ` (${plan.jurisdiction})` : ''}, stack ${plan.stackName}: ` +
        `${Object.keys(plan.functions).length} functions, one IAM role each; config ${packaged} valid`,
    );
  }

  async finalize() {
    const { assertDeploymentNames } = await import('./generate.ts');
    const provider = this.serverless.service.provider;
    try {
      assertDeploymentNames(provider.compiledCloudFormationTemplate.Resources, provider.stackName);
    } catch (error) {
      if (error?.name === 'DeployConfigError') this.fail(error.message);
      throw error;
    }
    this.throttle();
  }

  throttle() {
    const settings = this.serverless.service.custom?.fleetward ?? {};
    const stage = this.serverless.service.provider.compiledCloudFormationTemplate.Resources.HttpApiStage;
    if (!stage) return;
    stage.Properties.DefaultRouteSettings = {
      ...stage.Properties.DefaultRouteSettings,
      ThrottlingBurstLimit: num(settings.endpointThrottleBurst, 'endpointThrottleBurst'),
      ThrottlingRateLimit: num(settings.endpointThrottleRate, 'endpointThrottleRate'),
    };
  }
}

module.exports = FleetwardDeployment;
