/**
 * `fleetward onboard gcp`: the custom role (YAML for `gcloud iam roles create --file`), the
 * Workload Identity Pool with its AWS provider, the service account the Fleetward function
 * roles impersonate, and the bindings, as a gcloud script.
 *
 * - The provider trusts only the Fleetward AWS account, and its attribute condition only
 *   sessions of roles named `fleetward-<stage>-...`.
 * - `roles/iam.workloadIdentityUser` on the service account goes to exactly the function roles
 *   that use a member GCP grant (one `principalSet` per role, on the `aws_role` attribute).
 * - The custom role (every `member` GCP grant) is granted to the service account on every
 *   project fleet.yaml lists.
 *
 * Attribute mapping and `principalSet` format: Google's "Configure Workload Identity Federation
 * with AWS" (test/fixtures/onboard/README.md).
 */
import { stringify } from 'yaml';
import {
  type Generator,
  memberFunctionRoles,
  memberGrants,
  OnboardError,
  requireFleetwardAccount,
  script,
  shq,
  sortedUnique,
} from './common.ts';

/** Custom role ids: letters, digits, `_` and `.`, 3 to 64 characters (IAM `roles.create`). */
export const GCP_ROLE_ID = /^[a-zA-Z0-9_.]{3,64}$/;

/** The pool and provider ids Fleetward uses. */
export const GCP_POOL_ID = 'fleetward';
export const GCP_PROVIDER_ID = 'fleetward-aws';
export const GCP_SERVICE_ACCOUNT_ID = 'fleetward';

/**
 * Google's attribute mapping for AWS providers: `aws_role` is the role's session ARN without
 * the session name (`arn:aws:sts::<account>:assumed-role/<role>`).
 */
export const GCP_AWS_ATTRIBUTE_MAPPING =
  "google.subject=assertion.arn,attribute.aws_role=assertion.arn.contains('assumed-role') ? assertion.arn.extract('{account_arn}assumed-role/') + 'assumed-role/' + assertion.arn.extract('assumed-role/{role_name}/') : assertion.arn";

/** The custom role id for a stage: `fleetward_<stage>` with `-` as `_`. */
export function gcpRoleId(stage: string): string {
  return `fleetward_${stage.replace(/-/g, '_')}`;
}

export const onboardGcp: Generator = (input) => {
  const gcp = input.config.clouds.gcp;
  if (!gcp) throw new OnboardError('fleet.yaml configures no GCP project', 'clouds.gcp');
  const account = requireFleetwardAccount(input.options);
  // The identity grant (impersonating the service account) comes from roles/iam.workloadIdentityUser
  // on that one account, below; in a project-wide role it would reach every service account.
  const grants = memberGrants(input.grants, 'gcp').filter((g) => g.capability !== 'identity');
  if (grants.length === 0) {
    throw new OnboardError(
      'the permission table has no member GCP grant: nothing to put in the custom role',
      'grants',
    );
  }
  const stage = input.options.stage;
  const roleId = gcpRoleId(stage);
  if (!GCP_ROLE_ID.test(roleId)) throw new OnboardError(`custom role id "${roleId}" is not valid`, '--stage');
  const poolProject = input.options.poolProject ?? gcp.projects[0]!.id;
  const pool = gcp.projects.find((p) => p.id === poolProject);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable the script sets
  const poolNumber = pool?.number ?? '${POOL_PROJECT_NUMBER}';
  const serviceAccount = `${GCP_SERVICE_ACCOUNT_ID}@${poolProject}.iam.gserviceaccount.com`;
  const roles = memberFunctionRoles(input, 'gcp');

  const roleFile = `${roleId}.role.yaml`;
  const role = {
    title: `Fleetward (${stage})`,
    description: `What Fleetward (${stage}) calls in each project: ${sortedUnique(grants.map((g) => g.capability)).join(', ')}`,
    stage: 'GA',
    includedPermissions: sortedUnique(grants.map((g) => g.permission)),
  };

  const org = input.options.organization;
  const roleName = (project: string) =>
    org ? `organizations/${org}/roles/${roleId}` : `projects/${project}/roles/${roleId}`;
  const condition = `attribute.aws_role.startsWith('arn:aws:sts::${account}:assumed-role/fleetward-${stage}-')`;
  const lines: string[] = [];
  lines.push('# 1. The custom role, from the YAML file next to this script.');
  if (org) {
    lines.push(`gcloud iam roles create ${roleId} --organization=${shq(org)} --file=${roleFile}`);
  } else {
    for (const p of gcp.projects)
      lines.push(`gcloud iam roles create ${roleId} --project=${shq(p.id)} --file=${roleFile}`);
  }
  lines.push('', `# 2. The Workload Identity Pool and its AWS provider in ${poolProject}.`);
  if (!pool?.number) {
    lines.push(
      `POOL_PROJECT_NUMBER=$(gcloud projects describe ${shq(poolProject)} --format='value(projectNumber)')`,
    );
  }
  lines.push(
    `gcloud iam workload-identity-pools create ${GCP_POOL_ID} --project=${shq(poolProject)} --location=global --display-name=${shq(`Fleetward (${stage})`)}`,
    `gcloud iam workload-identity-pools providers create-aws ${GCP_PROVIDER_ID} --project=${shq(poolProject)} --location=global --workload-identity-pool=${GCP_POOL_ID} --account-id=${account} --attribute-mapping=${shq(GCP_AWS_ATTRIBUTE_MAPPING)} --attribute-condition=${shq(condition)}`,
    '',
    '# 3. The service account the Fleetward function roles impersonate.',
    `gcloud iam service-accounts create ${GCP_SERVICE_ACCOUNT_ID} --project=${shq(poolProject)} --display-name=${shq(`Fleetward (${stage})`)}`,
    '',
    `# 4. Only these ${roles.length} function role(s) may impersonate it.`,
  );
  for (const r of roles) {
    const member = `principalSet://iam.googleapis.com/projects/${poolNumber}/locations/global/workloadIdentityPools/${GCP_POOL_ID}/attribute.aws_role/arn:aws:sts::${account}:assumed-role/${r.name}`;
    lines.push(
      `gcloud iam service-accounts add-iam-policy-binding ${serviceAccount} --project=${shq(poolProject)} --role=roles/iam.workloadIdentityUser --member="${member}"`,
    );
  }
  lines.push('', '# 5. The custom role on every project fleet.yaml lists.');
  for (const p of gcp.projects) {
    lines.push(
      `gcloud projects add-iam-policy-binding ${shq(p.id)} --member=serviceAccount:${serviceAccount} --role=${roleName(p.id)} --condition=None`,
    );
  }
  return {
    artefacts: [
      {
        file: roleFile,
        title: `GCP custom role ${roleId} (gcloud iam roles create --file)`,
        content: stringify(role),
      },
      {
        file: 'gcp-onboard.sh',
        title:
          'gcloud commands: custom role, Workload Identity Pool and AWS provider, service account, bindings',
        content: script(
          [
            `Fleetward (${stage}) in GCP: run with gcloud as a project owner (or an organization admin with --organization).`,
            `Functions: ${roles.length} role(s) in AWS account ${account}; projects: ${gcp.projects.map((p) => p.id).join(', ')}.`,
          ],
          lines,
        ),
      },
    ],
    notes: [
      `GKE RBAC: 'fleetward onboard kubernetes' binds ${serviceAccount} in each GKE cluster.`,
      'Fleetward generates the external_account credential configuration for this pool and provider itself; no key file is created or stored.',
    ],
  };
};
