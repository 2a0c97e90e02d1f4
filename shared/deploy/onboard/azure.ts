/**
 * `fleetward onboard azure`: the custom role definition (`az role definition create
 * --role-definition`) and, per deployment (home, and each jurisdiction's regional one), one app
 * registration (`az ad app create`) with one federated identity credential per function role of
 * that deployment that uses a member Azure grant (`az ad app federated-credential create
 * --parameters`), the custom role assigned to it on every subscription fleet.yaml lists, and the
 * `--param azureClientId=<appId>` to deploy that deployment with. One app registration per
 * deployment, because an app registration holds at most 20 federated credentials and every
 * function role is a distinct token subject.
 *
 * The credential trusts the tokens the function role gets from AWS IAM outbound identity
 * federation (`sts:GetWebIdentityToken`): issuer = the AWS account's issuer URL, subject = the
 * role ARN (the token's `sub`), audience `api://AzureADTokenExchange`. Shapes: the samples in
 * test/fixtures/onboard/README.md.
 */

import { deploymentPrefix } from '../generate.ts';
import {
  type Deployment,
  deployArgs,
  deployments,
  type Generator,
  memberFunctionRoles,
  memberGrants,
  OnboardError,
  requireFleetwardAccount,
  script,
  shq,
  sortedUnique,
} from './common.ts';

/** The audience Microsoft Entra ID expects in a federated token. */
export const AZURE_TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';

/** An app registration holds at most 20 federated identity credentials (Entra ID limits). */
export const AZURE_FEDERATED_CREDENTIALS_MAX = 20;

/**
 * Azure RBAC operations that are data actions (data plane), not actions: blob, queue and table
 * data in storage accounts, and the Kubernetes operations of AKS clusters with Azure RBAC.
 * Everything else is a control-plane action.
 */
const DATA_ACTION = [
  /^Microsoft\.Storage\/storageAccounts\/(blobServices\/containers\/blobs|queueServices\/queues\/messages|tableServices\/tables\/entities|fileServices\/fileshares\/files)\//i,
  /^Microsoft\.ContainerService\/managedClusters\/(?!read$|write$|delete$|list[A-Za-z]*\/action$|accessProfiles\/|agentPools\/|privateEndpointConnections\/|maintenanceConfigurations\/|diagnosticsState\/|providers\/|detectors\/|upgradeProfiles\/|runCommand\/|commandResults\/|extensionaddons\/|resolvePrivateLinkServiceId\/|rotateClusterCertificates\/|stop\/|start\/|abort\/)/i,
];

/** Whether an Azure RBAC operation is a data action. */
export function isAzureDataAction(operation: string): boolean {
  return DATA_ACTION.some((re) => re.test(operation));
}

/** The custom role's name for a stage. */
export function azureRoleName(stage: string): string {
  return `Fleetward (${stage})`;
}

export const onboardAzure: Generator = (input) => {
  const azure = input.config.clouds.azure;
  if (!azure) throw new OnboardError('fleet.yaml configures no Azure subscription', 'clouds.azure');
  const grants = memberGrants(input.grants, 'azure');
  if (grants.length === 0) {
    throw new OnboardError(
      'the permission table has no member Azure grant: nothing to put in the role',
      'grants',
    );
  }
  const credential = azure.credential;
  if (credential.type !== 'aws-federation') {
    throw new OnboardError(
      `clouds.azure.credential must be type aws-federation (tenantId, clientId) for federation from the Lambda roles (got ${credential.type})`,
      'clouds.azure.credential.type',
    );
  }
  const issuer = input.options.issuer;
  if (!issuer) {
    throw new OnboardError(
      "the AWS issuer URL is unknown: pass --issuer, as 'aws iam get-outbound-web-identity-federation-info --query IssuerIdentifier --output text' prints it",
      '--issuer',
    );
  }
  if (!/^https:\/\/[^\s/]+(\/\S*)?$/.test(issuer)) {
    throw new OnboardError(`--issuer "${issuer}" is not an https URL`, '--issuer');
  }
  const account = requireFleetwardAccount(input.options);
  const stage = input.options.stage;
  const roleName = azureRoleName(stage);
  const operations = sortedUnique(grants.map((g) => g.permission));
  const definition = {
    Name: roleName,
    IsCustom: true,
    Description: `What Fleetward (${stage}) calls in each subscription: ${sortedUnique(grants.map((g) => g.capability)).join(', ')}`,
    Actions: operations.filter((op) => !isAzureDataAction(op)),
    NotActions: [] as string[],
    DataActions: operations.filter(isAzureDataAction),
    NotDataActions: [] as string[],
    AssignableScopes: azure.subscriptions.map((s) => `/subscriptions/${s.id}`),
  };
  const audience = credential.audience ?? AZURE_TOKEN_EXCHANGE_AUDIENCE;
  const notes: string[] = [];
  const artefacts = [];
  const lines = [
    '# 1. The custom role (assignable in every subscription fleet.yaml lists).',
    'az role definition create --role-definition fleetward-role-definition.json',
  ];
  let step = 2;
  for (const d of deployments(input.config, input.options)) {
    const roles = memberFunctionRoles(input, 'azure', d);
    if (roles.length === 0) continue;
    const app = appRegistrationName(stage, d);
    const variable = `APP_ID_${d.id.toUpperCase().replace(/-/g, '_')}`;
    const credentials = roles.map((r) => ({
      file: `federated-credential-${r.name}.json`,
      body: {
        name: r.name,
        issuer,
        subject: `arn:aws:iam::${account}:role/${r.name}`,
        description: `Fleetward function ${r.fn} (${d.id}, ${d.region})`,
        audiences: [audience],
      },
    }));
    if (credentials.length > AZURE_FEDERATED_CREDENTIALS_MAX) {
      notes.push(
        `Warning: deployment ${d.id} has ${credentials.length} federated credentials, more than the ${AZURE_FEDERATED_CREDENTIALS_MAX} one app registration may hold; Entra ID refuses the rest.`,
      );
    }
    artefacts.push(
      ...credentials.map((c) => ({
        file: c.file,
        title: `federated identity credential of app ${app} for ${c.body.subject} (az ad app federated-credential create --parameters)`,
        content: `${JSON.stringify(c.body, null, 2)}\n`,
      })),
    );
    lines.push(
      '',
      `# ${step++}. Deployment ${d.id} (${d.region}): its own app registration, ${credentials.length} federated credential(s), the role.`,
      `${variable}=$(az ad app create --display-name ${shq(app)} --sign-in-audience AzureADMyOrg --query appId --output tsv)`,
      `az ad sp create --id "$${variable}"`,
      ...credentials.map(
        (c) => `az ad app federated-credential create --id "$${variable}" --parameters ${c.file}`,
      ),
      ...azure.subscriptions.map(
        (s) =>
          `az role assignment create --assignee "$${variable}" --role ${shq(roleName)} --scope /subscriptions/${s.id}`,
      ),
      `echo "deploy ${d.id} with: serverless deploy --stage ${stage} ${deployArgs(d)} --param azureClientId=$${variable}"`,
    );
  }
  notes.push(
    `Each deployment signs in to Azure as its own app registration: deploy it with --param azureClientId=<its appId> (the script prints it); clouds.azure.credential.clientId (${credential.clientId}) serves only where that parameter is empty.`,
  );
  return {
    artefacts: [
      {
        file: 'fleetward-role-definition.json',
        title: `Azure custom role "${roleName}" (az role definition create --role-definition)`,
        content: `${JSON.stringify(definition, null, 2)}\n`,
      },
      ...artefacts,
      {
        file: 'azure-onboard.sh',
        title:
          'az commands: role definition; per deployment an app registration, federated credentials, assignments',
        content: script(
          [
            `Fleetward (${stage}) in Azure, tenant ${credential.tenantId}: run with az as an Owner or User Access Administrator of each subscription, allowed to create app registrations.`,
          ],
          lines,
        ),
      },
    ],
    notes,
  };
};

/** The display name of a deployment's app registration: `fleetward-<stage>-<deployment>`. */
export function appRegistrationName(stage: string, d: Deployment): string {
  return deploymentPrefix(stage, d.id);
}
