/**
 * A local Serverless Framework plugin: drops the `DependsOn` entries of generated resources that
 * a `Ref` or `Fn::GetAtt` in the same resource already implies (the framework adds one to every
 * httpApi route). CloudFormation ignores them, but cfn-lint reports each as W3005, and moto's
 * `ValidateTemplate` (which `serverless deploy` calls) refuses a template with any cfn-lint
 * finding, so without this the stack cannot be deployed into the local cloud.
 */
'use strict';

function references(value, found = new Set()) {
  if (Array.isArray(value)) {
    for (const v of value) references(v, found);
  } else if (value && typeof value === 'object') {
    if (typeof value.Ref === 'string') found.add(value.Ref);
    const att = value['Fn::GetAtt'];
    if (Array.isArray(att)) found.add(String(att[0]));
    else if (typeof att === 'string') found.add(att.split('.')[0]);
    for (const v of Object.values(value)) references(v, found);
  }
  return found;
}

class NoRedundantDependsOn {
  constructor(serverless) {
    this.hooks = {
      'before:package:finalize': () => {
        const resources = serverless.service.provider.compiledCloudFormationTemplate.Resources;
        for (const resource of Object.values(resources)) {
          if (resource.DependsOn === undefined) continue;
          const implied = references(resource.Properties);
          const kept = [].concat(resource.DependsOn).filter((name) => !implied.has(name));
          if (kept.length === 0) delete resource.DependsOn;
          else resource.DependsOn = kept;
        }
      },
    };
  }
}

module.exports = NoRedundantDependsOn;
