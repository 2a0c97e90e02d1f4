/**
 * `fleetward onboard aws|gcp|azure|kubernetes|evidence`: print the artefacts that give
 * Fleetward its access (generated from the permission table and fleet.yaml), to stdout or as
 * files under `--out`.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { allGrants } from '../shared/clouds/grants.ts';
import { configPath, DEFAULT_CONFIG_FILE, loadConfig } from '../shared/config/load.ts';
import { FUNCTIONS } from '../shared/deploy/functions.ts';
import { onboardEvidence } from '../shared/deploy/onboard/evidence.ts';
import {
  OnboardError,
  type OnboardOptions,
  type OnboardResult,
  TARGETS,
} from '../shared/deploy/onboard/index.ts';
import { UsageError } from '../shared/runtime/errors.ts';
import { parseCommandArgs, unknownChoice } from './args.ts';

const TARGET_NAMES = Object.keys(TARGETS);

export const ONBOARD_HELP = `Usage: fleetward onboard <target> [options]

Prints ready-to-apply artefacts that give Fleetward (deployed with serverless) the access it
needs, generated from the permission table each cloud adapter declares and from fleet.yaml.
Nothing is applied: review, then apply with the tool each artefact names.

Targets:
${TARGET_NAMES.map((t) => `  ${t.padEnd(11)} ${TARGETS[t]!.summary}`).join('\n')}

Options:
  --config FILE             fleet config (default: $FLEETWARD_CONFIG, else ./${DEFAULT_CONFIG_FILE})
  --stage STAGE             the stage the functions are deployed with (default: fleet.yaml's stage)
  --out DIR                 write one file per artefact into DIR instead of printing them
  --home-region REGION      region of the home deployment (default: clouds.aws.homeRegion)
  --regional ID=REGION      region of jurisdiction ID's regional deployment, repeatable
                            (default: the region of its AWS evidence bucket)
  --fleetward-account ID    the AWS account the functions run in (gcp, azure)
  --issuer URL              the AWS account's outbound identity federation issuer (azure):
                            aws iam get-outbound-web-identity-federation-info --query IssuerIdentifier --output text
  --pool-project PROJECT    GCP project of the Workload Identity Pool and service account
                            (default: the first project of clouds.gcp)
  --organization ORG        create the GCP custom role once in this organization, not per project
  --jurisdiction ID         evidence: only this jurisdiction
  -h, --help                show this help

Function roles are named fleetward-<stage>-<home|jurisdiction>-<function>; the trust of every artefact
names exactly the functions whose capabilities use that cloud's member permissions, in the
home deployment and in each jurisdiction's regional deployment. Notes and warnings go to stderr.
Exit: 0 printed, 2 bad usage, invalid config, or an artefact that cannot be made correct
(e.g. an evidence bucket outside its jurisdiction: nothing is printed then).`;

const OPTIONS = {
  config: { type: 'string' },
  stage: { type: 'string' },
  out: { type: 'string' },
  'home-region': { type: 'string' },
  regional: { type: 'string', multiple: true },
  'fleetward-account': { type: 'string' },
  issuer: { type: 'string' },
  'pool-project': { type: 'string' },
  organization: { type: 'string' },
  jurisdiction: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parseRegional(values: readonly string[] | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const v of values ?? []) {
    const match = /^([a-z][a-z0-9-]*)=([a-z0-9-]+)$/.exec(v);
    if (!match) throw new UsageError(`--regional "${v}" is not <jurisdiction>=<region>`);
    result[match[1]!] = match[2]!;
  }
  return result;
}

async function emit(result: OnboardResult, out: string | undefined): Promise<void> {
  if (out) {
    await mkdir(out, { recursive: true });
    for (const a of result.artefacts) {
      const path = join(out, a.file);
      await writeFile(path, a.content);
      if (a.file.endsWith('.sh')) await chmod(path, 0o755);
      process.stderr.write(`wrote ${path}: ${a.title}\n`);
    }
  } else if (result.artefacts.length === 1) {
    process.stdout.write(result.artefacts[0]!.content);
  } else {
    for (const a of result.artefacts) process.stdout.write(`# ==> ${a.file}: ${a.title}\n${a.content}\n`);
  }
  for (const note of result.notes) process.stderr.write(`note: ${note}\n`);
}

/** Runs `fleetward onboard`; returns the exit code. */
export async function cmdOnboard(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('onboard', {
    args,
    allowPositionals: true,
    options: OPTIONS,
  });
  const [target, ...rest] = positionals;
  if (values.help || !target) {
    console.log(ONBOARD_HELP);
    return values.help ? 0 : 2;
  }
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  const entry = TARGETS[target];
  if (!entry) throw unknownChoice('onboard', target, TARGET_NAMES, 'target');
  if (values.jurisdiction !== undefined && target !== 'evidence') {
    throw new UsageError('--jurisdiction applies to the evidence target only');
  }
  const config = await loadConfig(configPath(values.config));
  const stage = values.stage ?? config.stage;
  if (!/^[a-z0-9-]+$/.test(stage)) throw new UsageError(`--stage "${stage}" is not a lower-case stage name`);
  const options: OnboardOptions = {
    stage,
    homeRegion: values['home-region'],
    regionalRegions: parseRegional(values.regional),
    fleetwardAccountId: values['fleetward-account'],
    issuer: values.issuer,
    poolProject: values['pool-project'],
    organization: values.organization,
  };
  const input = { grants: allGrants(), functions: FUNCTIONS, config, options };
  try {
    const result =
      target === 'evidence'
        ? onboardEvidence({ ...input, evidence: { jurisdiction: values.jurisdiction } })
        : entry.generate(input);
    await emit(result, values.out);
    return 0;
  } catch (error) {
    if (error instanceof OnboardError) {
      console.error(`fleetward onboard ${target}: ${error.message}`);
      return 2;
    }
    throw error;
  }
}
