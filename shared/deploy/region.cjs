/**
 * The default region of a deployment (serverless.yml `provider.region` when no `--region` is
 * given): the home role's default, or for `--param role=regional --param jurisdiction=<id>` the
 * region of that jurisdiction's AWS evidence bucket in fleet.yaml (`FLEETWARD_CONFIG`), where its
 * evidence already lives, so a regional deployment never defaults to a region outside its
 * jurisdiction. The fleetward plugin still checks any region against the jurisdiction.
 */
const { readFile } = require('node:fs/promises');
const { resolve } = require('node:path');
const { parse } = require('yaml');

const HOME_DEFAULT = 'eu-central-1';

module.exports = async ({ resolveVariable }) => {
  const role = await resolveVariable('param:role');
  if (role !== 'regional') return HOME_DEFAULT;
  const jurisdiction = await resolveVariable('param:jurisdiction');
  const file = process.env.FLEETWARD_CONFIG || 'fleet.yaml';
  let config;
  try {
    config = parse(await readFile(resolve(process.cwd(), file), 'utf8'));
  } catch (error) {
    throw new Error(
      `a regional deployment takes its default region from ${file}: ${error.message}; or pass --region`,
    );
  }
  // An unknown or missing jurisdiction is refused by the fleetward plugin, naming the valid ones.
  const entry = jurisdiction ? config?.jurisdictions?.[jurisdiction] : undefined;
  if (entry === undefined) return HOME_DEFAULT;
  const region = entry?.evidence?.aws?.region;
  if (typeof region !== 'string' || region === '') {
    throw new Error(
      `jurisdictions.${jurisdiction}.evidence.aws.region is not set in ${file}: pass --region (a region inside jurisdiction "${jurisdiction}")`,
    );
  }
  return region;
};
