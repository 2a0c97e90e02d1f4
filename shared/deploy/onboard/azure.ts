/**
 * `fleetward onboard azure`: the custom role definition (`az role definition create
 * --role-definition`), its assignment on every subscription fleet.yaml lists, and one
 * federated identity credential per Fleetward function role that uses a member Azure grant
 * (`az ad app federated-credential create --parameters`).
 *
 * The credential trusts the tokens the function role gets from AWS IAM outbound identity
 * federation (`sts:GetWebIdentityToken`): issuer = the AWS account's issuer URL, subject = the
 * role ARN (the token's `sub`), audience `api://AzureADTokenExchange`. Shapes: the samples in
 * test/fixtures/onboard/README.md.
 */
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
  if (credential.type !== 'workload-identity') {
    throw new OnboardError(
      'clouds.azure.credential must be type workload-identity (tenantId, clientId of the app registration) for federation from AWS',
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
  const roles = memberFunctionRoles(input, 'azure');
  const credentials = roles.map((r) => ({
    file: `federated-credential-${r.name}.json`,
    body: {
      name: r.name,
      issuer,
      subject: `arn:aws:iam::${account}:role/${r.name}`,
      description: `Fleetward function ${r.fn} (${r.deployment.jurisdiction ?? 'home'}, ${r.deployment.region})`,
      audiences: [AZURE_TOKEN_EXCHANGE_AUDIENCE],
    },
  }));
  const lines = [
    '# 1. The custom role (assignable in every subscription fleet.yaml lists).',
    'az role definition create --role-definition fleetward-role-definition.json',
    '',
    '# 2. The role for the app registration Fleetward signs in as, on every subscription.',
    ...azure.subscriptions.map(
      (s) =>
        `az role assignment create --assignee ${credential.clientId} --role ${shq(roleName)} --scope /subscriptions/${s.id}`,
    ),
    '',
    `# 3. One federated credential per Fleetward function role (${credentials.length}).`,
    ...credentials.map(
      (c) => `az ad app federated-credential create --id ${credential.clientId} --parameters ${c.file}`,
    ),
  ];
  const notes: string[] = [];
  if (credentials.length > AZURE_FEDERATED_CREDENTIALS_MAX) {
    notes.push(
      `Warning: ${credentials.length} federated credentials, more than the ${AZURE_FEDERATED_CREDENTIALS_MAX} one app registration may hold; Entra ID refuses the rest.`,
    );
  }
  return {
    artefacts: [
      {
        file: 'fleetward-role-definition.json',
        title: `Azure custom role "${roleName}" (az role definition create --role-definition)`,
        content: `${JSON.stringify(definition, null, 2)}\n`,
      },
      ...credentials.map((c) => ({
        file: c.file,
        title: `federated identity credential for ${c.body.subject} (az ad app federated-credential create --parameters)`,
        content: `${JSON.stringify(c.body, null, 2)}\n`,
      })),
      {
        file: 'azure-onboard.sh',
        title: 'az commands: role definition, assignments, federated credentials',
        content: script(
          [
            `Fleetward (${stage}) in Azure, tenant ${credential.tenantId}: run with az as an Owner or User Access Administrator of each subscription and an owner of app ${credential.clientId}.`,
          ],
          lines,
        ),
      },
    ],
    notes,
  };
};
