/**
 * The `fleet.yaml` schema. Strict objects everywhere: an unknown key is a typo and
 * fails validation, naming its path. `fleetward config schema` exports it as JSON Schema.
 *
 * Every field carries its documentation here, once: `.describe()` (or `.meta()` with
 * `examples`) becomes the `description` editors show, and `.default()` becomes `default`.
 * test/unit/config-schema-descriptions.test.ts fails on a field without a description.
 */
import { z } from 'zod';

const positiveInt = () =>
  z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });
const nonEmpty = (what: string) =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

/** Said of every file path that `parseConfig` resolves against the config file's directory. */
const RELATIVE = 'A relative path is relative to this config file.';

export const CountryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, { error: 'expected an ISO 3166-1 alpha-2 country code like "DE"' })
  .meta({ description: 'ISO 3166-1 alpha-2 country code, upper-case.', examples: ['DE', 'IN', 'ZA'] });

export const RegionName = z
  .string()
  .regex(/^[a-z][a-z0-9-]*[a-z0-9]$/, { error: 'expected a region name like "eu-central-1"' })
  .meta({
    description: 'A cloud region name as the cloud spells it.',
    examples: ['eu-central-1', 'europe-west3', 'germanywestcentral'],
  });

const JurisdictionId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'expected a lower-case id like "eu"' })
  .refine((id) => id !== 'unassigned', { error: '"unassigned" is reserved' });

export const PRESET_IDS = ['eu-gdpr', 'in-dpdp', 'za-popia', 'ke-dpa'] as const;

/** Loopback or https endpoint override for an emulator or a private endpoint. */
const EndpointUrl = z.url({ error: 'expected a URL like "https://example.internal"' });

const IamRoleName = z
  .string()
  .regex(/^[\w+=,.@-]{1,64}$/, { error: 'expected an IAM role name (up to 64 of A-Z a-z 0-9 +=,.@_-)' });

const AwsAccountId = z.string().regex(/^\d{12}$/, { error: 'expected a 12-digit AWS account id' });

const GcpProjectNumber = () =>
  z.preprocess(
    (value) => (typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value),
    z.string({ error: 'expected a GCP project number (digits only)' }).regex(/^[1-9][0-9]{0,18}$/, {
      error: 'expected a GCP project number (digits only)',
    }),
  );

const Guid = (what: string) => z.guid({ error: `expected ${what} (uuid)` });
const GUID_EXAMPLE = '00000000-0000-0000-0000-000000000000';

export const AwsAccount = z.strictObject({
  id: AwsAccountId.meta({
    description: 'The 12-digit AWS account id. Quote it, so YAML keeps it a string.',
    examples: ['111111111111'],
  }),
  alias: z
    .string()
    .optional()
    .meta({
      description:
        'A readable name for the account, shown in onboarding output. Cluster ids use the account id.',
      examples: ['payments-prod'],
    }),
  roleArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, { error: 'expected an IAM role ARN' })
    .meta({
      description:
        'The IAM role Fleetward assumes in this account (STS AssumeRole with the base credentials); every call into the account runs as this role.',
      examples: ['arn:aws:iam::111111111111:role/fleetward-reader'],
    }),
  externalId: z
    .string()
    .optional()
    .describe(
      "The external id the role's trust policy requires (`sts:ExternalId`), sent with every AssumeRole. Omitted: none is sent.",
    ),
  regions: z
    .union([z.literal('all'), z.array(RegionName).min(1)], {
      error: 'expected "all" or a list of region names',
    })
    .meta({
      description:
        'The regions to look for EKS clusters in: a list of AWS region names, or `all` for every region enabled in the account (EC2 DescribeRegions in `homeRegion`; opt-in regions not opted into are skipped).',
      examples: ['all', ['eu-central-1', 'eu-west-1']],
    }),
});

export const AwsConfig = z
  .strictObject({
    endpoint: EndpointUrl.optional().meta({
      description:
        'One endpoint for every AWS service (STS, EC2, EKS, S3, Budgets, ...), e.g. a local emulator such as moto, or a proxy. Omitted: the regional AWS endpoints.',
      examples: ['http://127.0.0.1:5000'],
    }),
    credentials: z
      .strictObject({
        profile: nonEmpty('a profile name').meta({
          description: 'Profile name in the shared AWS credentials and config files.',
          examples: ['fleetward-admin'],
        }),
        file: z
          .string()
          .optional()
          .describe(
            `The shared credentials file. ${RELATIVE} Omitted: the SDK's default (\`AWS_SHARED_CREDENTIALS_FILE\`, else ~/.aws/credentials).`,
          ),
      })
      .optional()
      .describe(
        "Base credentials that assume each account's role: a named profile. Omitted: the SDK's default chain (environment, SSO, instance or Lambda role), as a deployment uses.",
      ),
    homeRegion: RegionName.default('us-east-1').meta({
      description:
        'Region of the STS calls that assume account roles, of the region listing of accounts with `regions: all`, and of S3 calls to a bucket whose region is not known.',
      examples: ['eu-central-1'],
    }),
    concurrency: positiveInt()
      .default(16)
      .describe('Most AWS API calls in flight at once, across all accounts and regions.'),
    timeoutMs: positiveInt()
      .default(10_000)
      .describe('Timeout of one attempt of an AWS call, in milliseconds (to connect, and to answer).'),
    maxAttempts: positiveInt()
      .default(4)
      .describe(
        "Attempts per AWS call, the first included: the SDK's standard retry (backoff with jitter, Retry-After honoured). 1 turns retries off.",
      ),
    accounts: z
      .array(AwsAccount)
      .min(1, { error: 'expected at least one account' })
      .describe('The AWS accounts whose EKS clusters Fleetward watches; at least one.'),
    auditExport: z
      .strictObject({
        logsRoleName: IamRoleName.default('fleetward-audit-logs-to-firehose').describe(
          "The IAM role, in each cluster's account, that CloudWatch Logs assumes to put the audit subscription's records into the Firehose stream (trusts `logs.amazonaws.com`; allows `firehose:PutRecord` and `firehose:PutRecordBatch` on `fleetward-audit-*`).",
        ),
        firehoseRoleName: IamRoleName.default('fleetward-audit-firehose-to-s3').describe(
          "The IAM role, in each cluster's account, that Firehose assumes to write into the evidence bucket (trusts `firehose.amazonaws.com`; allows `s3:PutObject`, `s3:GetBucketLocation`, `s3:ListBucket` and `s3:AbortMultipartUpload` on the bucket, which the bucket policy must also allow).",
        ),
      })
      .prefault({})
      .describe(
        'Export mode of EKS audit logs (`audit.mode: export`): the roles the CloudWatch Logs subscription and the Firehose stream run as. Omitted: the default role names.',
      ),
  })
  .describe(
    'Amazon Web Services: EKS clusters in the listed accounts, S3 evidence buckets and AWS Budgets. Omitted: no AWS.',
  );

export const GcpProject = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: 'expected a GCP project id' })
    .meta({
      description: 'The GCP project id (6-30 characters: lower-case letters, digits, hyphens).',
      examples: ['payments-prod-eu'],
    }),
  number: GcpProjectNumber()
    .optional()
    .meta({
      description:
        'The project number, as GKE cluster notifications name the project; quote it. Omitted: resolved once through Cloud Resource Manager (`resourcemanager.projects.get`). Numbers must be unique.',
      examples: ['123456789012'],
    }),
});

export const GcpWorkloadIdentity = z
  .strictObject({
    projectNumber: GcpProjectNumber().meta({
      description: 'Number (not id) of the project that holds the workload identity pool; quote it.',
      examples: ['987654321098'],
    }),
    poolId: z
      .string()
      .regex(/^[a-z0-9-]{4,32}$/, { error: 'expected a workload identity pool id (4-32 of a-z, 0-9, -)' })
      .meta({
        description:
          'Id of the workload identity pool (4-32 characters: lower-case letters, digits, hyphens).',
        examples: ['fleetward-aws'],
      }),
    providerId: z
      .string()
      .regex(/^[a-z0-9-]{4,32}$/, { error: 'expected a workload identity provider id (4-32 of a-z, 0-9, -)' })
      .meta({
        description:
          'Id of the AWS provider inside the pool (4-32 characters: lower-case letters, digits, hyphens).',
        examples: ['aws-home'],
      }),
    serviceAccount: z
      .email({ error: 'expected a service account email' })
      .regex(/\.gserviceaccount\.com$/, { error: 'expected a service account email (…gserviceaccount.com)' })
      .optional()
      .meta({
        description:
          'Service account to impersonate with the federated token (IAM Credentials `generateAccessToken`; the federated principal needs roles/iam.workloadIdentityUser on it). Omitted: roles are granted to the federated principal directly.',
        examples: ['fleetward@fleetward-ops.iam.gserviceaccount.com'],
      }),
    tokenUrl: EndpointUrl.optional().describe(
      "Google's STS token endpoint, to point at a local fake. Omitted: https://sts.googleapis.com/v1/token.",
    ),
    impersonationEndpoint: EndpointUrl.optional().describe(
      'The IAM Service Account Credentials endpoint, to point at a local fake. Omitted: https://iamcredentials.googleapis.com.',
    ),
  })
  .describe(
    "Workload Identity Federation from the AWS role Fleetward runs as (the Lambda role): Google's STS accepts a signed AWS GetCallerIdentity request, so no key file and no secret is stored anywhere. Outside Lambda, export the role's credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION). Mutually exclusive with `credentialsFile`.",
  );

export const GcpConfig = z
  .strictObject({
    endpoint: z
      .string()
      .optional()
      .meta({
        description:
          '`host:port` of the GKE API (gRPC), e.g. a local emulator. Omitted: container.googleapis.com:443.',
        examples: ['127.0.0.1:9443'],
      }),
    loggingEndpoint: EndpointUrl.optional().describe(
      'Cloud Logging API base URL (audit logs), e.g. a local emulator; https except on loopback. Omitted: https://logging.googleapis.com.',
    ),
    billingBudgetsEndpoint: z
      .string()
      .optional()
      .describe(
        '`host:port` of the Cloud Billing Budget API (gRPC). Omitted: billingbudgets.googleapis.com:443.',
      ),
    storageEndpoint: EndpointUrl.optional().describe(
      'Cloud Storage JSON API base URL (evidence buckets), e.g. a local emulator; https except on loopback. Omitted: https://storage.googleapis.com.',
    ),
    resourceManagerEndpoint: EndpointUrl.optional().describe(
      'Cloud Resource Manager base URL (project number lookups), e.g. a local fake; https except on loopback. Omitted: https://cloudresourcemanager.googleapis.com.',
    ),
    insecure: z
      .boolean()
      .default(false)
      .describe(
        'Plain-text connections without credentials to GKE (gRPC), Cloud Storage and the REST APIs: only for local emulators, and refused unless the endpoints used are loopback addresses.',
      ),
    credentialsFile: z
      .string()
      .optional()
      .describe(
        `A Google credentials file: a service-account key or an \`external_account\` configuration written by hand. ${RELATIVE} Omitted: \`workloadIdentity\`, else application default credentials. Mutually exclusive with \`workloadIdentity\`.`,
      ),
    workloadIdentity: GcpWorkloadIdentity.optional(),
    concurrency: positiveInt()
      .default(8)
      .describe('Most GCP API calls in flight at once, across all projects.'),
    timeoutMs: positiveInt()
      .default(30_000)
      .describe('Deadline of one attempt of a GCP call, in milliseconds.'),
    maxAttempts: positiveInt()
      .default(4)
      .describe(
        'Attempts per GCP call, the first included; throttling, unavailability, network errors and timeouts are retried with backoff. 1 turns retries off.',
      ),
    projects: z
      .array(GcpProject)
      .min(1, { error: 'expected at least one project' })
      .superRefine((projects, ctx) => {
        const seen = new Set<string>();
        projects.forEach((p, i) => {
          if (p.number === undefined) return;
          if (seen.has(p.number)) {
            ctx.addIssue({
              code: 'custom',
              path: [i, 'number'],
              message: `duplicate project number "${p.number}"`,
            });
          }
          seen.add(p.number);
        });
      })
      .describe('The GCP projects whose GKE clusters Fleetward watches; at least one.'),
  })
  .superRefine((gcp, ctx) => {
    if (gcp.credentialsFile !== undefined && gcp.workloadIdentity !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['workloadIdentity'],
        message: 'expected only one of credentialsFile and workloadIdentity',
      });
    }
  })
  .describe(
    'Google Cloud: GKE clusters in the listed projects, Cloud Storage evidence buckets and Cloud Billing budgets. Omitted: no GCP.',
  );

/** The audience Entra ID expects in a federated client assertion (public cloud). */
export const AZURE_FEDERATION_AUDIENCE = 'api://AzureADTokenExchange';

export const AzureCredential = z
  .discriminatedUnion(
    'type',
    [
      z
        .strictObject({ type: z.literal('default').describe('Selects DefaultAzureCredential.') })
        .describe(
          'DefaultAzureCredential: environment variables, workload identity, managed identity, then developer sign-ins such as the Azure CLI, whichever is available first.',
        ),
      z
        .strictObject({
          type: z.literal('workload-identity').describe('Selects a federated token from a file.'),
          tenantId: Guid('a tenant id').meta({
            description: 'The Entra ID tenant (directory) id.',
            examples: [GUID_EXAMPLE],
          }),
          clientId: Guid('a client id').meta({
            description:
              'Application (client) id of the app registration or managed identity that trusts the token.',
            examples: [GUID_EXAMPLE],
          }),
          tokenFile: z
            .string()
            .optional()
            .describe(
              'File holding the federated token (e.g. a projected Kubernetes service account token). Omitted: `AZURE_FEDERATED_TOKEN_FILE`, as AKS sets it.',
            ),
        })
        .describe('A federated client assertion read from a token file (Entra ID workload identity).'),
      z
        .strictObject({
          type: z
            .literal('aws-federation')
            .describe('Selects a federated token from AWS STS GetWebIdentityToken.'),
          tenantId: Guid('a tenant id').meta({
            description: 'The Entra ID tenant (directory) id.',
            examples: [GUID_EXAMPLE],
          }),
          clientId: Guid('a client id').meta({
            description:
              "Application (client) id of the app registration whose federated credential trusts the AWS role. A deployment's `azureClientId` parameter overrides it.",
            examples: [GUID_EXAMPLE],
          }),
          authorityHost: z
            .url({
              protocol: /^https$/,
              error: 'expected an https URL like "https://login.microsoftonline.com"',
            })
            .optional()
            .meta({
              description:
                'Entra ID authority host; sovereign clouds have their own. Omitted: https://login.microsoftonline.com.',
              examples: ['https://login.microsoftonline.us'],
            }),
          authorityCaFile: nonEmpty('a file path')
            .optional()
            .describe(
              "Extra CA certificate (PEM file) trusted for `authorityHost` only, e.g. a local emulator's.",
            ),
          audience: nonEmpty('an audience')
            .default(AZURE_FEDERATION_AUDIENCE)
            .describe(
              "Audience of the AWS web identity token; must match the audience of the app registration's federated credential.",
            ),
          stsRegion: RegionName.optional().meta({
            description:
              'AWS region of the STS endpoint that issues the token (GetWebIdentityToken has no global endpoint). Omitted: the region the function runs in (`AWS_REGION`).',
            examples: ['eu-central-1'],
          }),
          stsEndpoint: EndpointUrl.optional().describe(
            'STS endpoint, e.g. a local emulator. Omitted: https://sts.<stsRegion>.amazonaws.com.',
          ),
          tokenLifetimeSec: z
            .int({ error: 'expected seconds between 60 and 3600' })
            .min(60, { error: 'expected seconds between 60 and 3600' })
            .max(3600, { error: 'expected seconds between 60 and 3600' })
            .default(300)
            .describe('Lifetime asked for the web identity token, in seconds (60-3600).'),
        })
        .describe(
          'A federated client assertion whose JWT comes from AWS IAM outbound identity federation (`sts:GetWebIdentityToken`, signed for the AWS role Fleetward runs as): nothing secret is configured or stored.',
        ),
      z
        .strictObject({
          type: z.literal('access-token').describe('Selects a bearer token from a variable or a file.'),
          env: nonEmpty('an environment variable name')
            .optional()
            .meta({
              description: 'Environment variable holding the token, read at every call.',
              examples: ['AZURE_ACCESS_TOKEN'],
            }),
          file: nonEmpty('a file path')
            .optional()
            .describe(`File holding the token, read at every call. ${RELATIVE}`),
        })
        .refine((c) => (c.env === undefined) !== (c.file === undefined), {
          error: 'expected exactly one of env or file',
        })
        .describe(
          'A bearer token for Azure Resource Manager from an environment variable or a file (exactly one), e.g. from `az account get-access-token`: short-lived, for local runs.',
        ),
    ],
    { error: 'expected type "default", "workload-identity", "aws-federation" or "access-token"' },
  )
  .describe(
    'How Fleetward signs in to Entra ID for Azure Resource Manager, Log Analytics and AKS: `type` is `default`, `workload-identity`, `aws-federation` or `access-token`.',
  );

export const AzureSubscription = z.strictObject({
  id: Guid('a subscription id').meta({ description: 'The subscription id.', examples: [GUID_EXAMPLE] }),
});

export const AzureConfig = z
  .strictObject({
    endpoint: EndpointUrl.default('https://management.azure.com').describe(
      'Azure Resource Manager endpoint (https only): sovereign clouds and local emulators have their own.',
    ),
    logAnalyticsEndpoint: EndpointUrl.optional().describe(
      'Log Analytics query endpoint (AKS audit logs). Omitted: https://api.loganalytics.io.',
    ),
    storageKeyFile: z
      .string()
      .optional()
      .describe(
        `A file holding a storage account key, for shared-key access to the evidence containers (emulators, and accounts without Entra ID data access). ${RELATIVE} Omitted: the credential.`,
      ),
    blobEndpoint: z
      .string()
      .default('https://{account}.blob.core.windows.net')
      .meta({
        description:
          'Blob endpoint of the evidence storage accounts; `{account}` is replaced by the account name.',
        examples: ['http://127.0.0.1:10000/{account}'],
      }),
    caFile: z
      .string()
      .optional()
      .describe(
        `Extra CA certificate (PEM file) trusted for \`endpoint\` only, e.g. a local emulator's; not used for the blob endpoint. ${RELATIVE}`,
      ),
    credential: AzureCredential.default({ type: 'default' }),
    concurrency: positiveInt()
      .default(8)
      .describe('Most Azure API calls in flight at once, across all subscriptions.'),
    timeoutMs: positiveInt()
      .default(30_000)
      .describe('Deadline of one attempt of an Azure call, in milliseconds.'),
    maxAttempts: positiveInt()
      .default(4)
      .describe(
        'Attempts per Azure call, the first included; throttling, 5xx, network errors and timeouts are retried with backoff. 1 turns retries off.',
      ),
    subscriptions: z
      .array(AzureSubscription)
      .min(1, { error: 'expected at least one subscription' })
      .describe('The Azure subscriptions whose AKS clusters Fleetward watches; at least one.'),
  })
  .describe(
    'Microsoft Azure: AKS clusters in the listed subscriptions, Blob Storage evidence containers and Consumption budgets. Omitted: no Azure.',
  );

export const KubeContext = z.strictObject({
  name: nonEmpty('a context name').meta({
    description: 'A context of the kubeconfig file; also the cluster name in its id.',
    examples: ['kind-frankfurt'],
  }),
  cloud: z
    .enum(['aws', 'gcp', 'azure'])
    .optional()
    .describe(
      "The cloud whose region names `region` uses, to find the cluster's country. Required unless `country` is given.",
    ),
  region: nonEmpty('a region').meta({
    description:
      'Where the cluster runs: a region name of `cloud`, or any label (a data centre) when `country` is given. Part of the cluster id.',
    examples: ['eu-central-1', 'nairobi-dc1'],
  }),
  country: CountryCode.optional().describe(
    'The country the cluster runs in (ISO 3166-1 alpha-2), for on-premises clusters; overrides the lookup of `region`.',
  ),
});

export const KubeconfigSource = z.strictObject({
  alias: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'expected a lower-case alias' })
    .meta({
      description:
        'Short name of this file in cluster ids (`kubeconfig/<alias>/<region>/<context>`): lower-case letters, digits, hyphens.',
      examples: ['onprem'],
    }),
  file: nonEmpty('a kubeconfig file path').describe(
    `The kubeconfig file. ${RELATIVE} Its users must give bearer tokens (client certificates and basic auth are not supported).`,
  ),
  timeoutMs: positiveInt()
    .default(10_000)
    .describe("Timeout of discovery's version probe of one context, in milliseconds."),
  contexts: z
    .array(KubeContext)
    .min(1, { error: 'expected at least one context' })
    .describe('The contexts of the file that are clusters to watch; at least one.'),
});

export const EvidenceBuckets = z
  .strictObject({
    aws: z
      .strictObject({
        bucket: nonEmpty('a bucket name').meta({
          description: 'The S3 bucket name.',
          examples: ['example-fleetward-evidence-eu'],
        }),
        region: RegionName.meta({
          description: "The bucket's AWS region; it must be inside the jurisdiction.",
          examples: ['eu-central-1'],
        }),
        account: AwsAccountId.optional().meta({
          description:
            "The account that owns the bucket, sent as `ExpectedBucketOwner` so that someone else's bucket of the same name is refused. Omitted: the account of the function's own credentials.",
          examples: ['123456789012'],
        }),
      })
      .optional()
      .describe('An S3 bucket with Object Lock in COMPLIANCE mode.'),
    gcp: z
      .strictObject({
        bucket: nonEmpty('a bucket name').meta({
          description: 'The Cloud Storage bucket name.',
          examples: ['example-fleetward-evidence-eu'],
        }),
        location: RegionName.meta({
          description: "The bucket's location (a region); it must be inside the jurisdiction.",
          examples: ['europe-west3'],
        }),
      })
      .optional()
      .describe('A Cloud Storage bucket with a locked retention policy.'),
    azure: z
      .strictObject({
        storageAccount: nonEmpty('a storage account').meta({
          description: 'The storage account name.',
          examples: ['examplefwevidenceeu'],
        }),
        container: nonEmpty('a container').meta({
          description: 'The blob container name.',
          examples: ['evidence'],
        }),
        region: RegionName.meta({
          description: "The storage account's location; it must be inside the jurisdiction.",
          examples: ['germanywestcentral'],
        }),
        resourceGroup: z
          .string()
          .optional()
          .describe(
            "The storage account's resource group, through which its location and the container's immutability are checked in ARM. Omitted: neither can be verified.",
          ),
        subscriptionId: z
          .guid()
          .optional()
          .meta({
            description:
              "The storage account's subscription. Omitted: the first of `clouds.azure.subscriptions`.",
            examples: [GUID_EXAMPLE],
          }),
      })
      .optional()
      .describe('A blob container with a locked version-level immutability policy.'),
  })
  .describe(
    "Write-once storage of this jurisdiction's audit archives and compliance snapshots, at most one per cloud, each inside the jurisdiction and immutable for at least `audit.retentionDays`. Evidence goes to the bucket on the cluster's own cloud, else to any of them. Omitted: nothing is archived or published for this jurisdiction (a finding), unless the CLI is given `--local-evidence` (a local directory, not compliant).",
  );

export const ResidencyException = z
  .strictObject({
    allowCountries: z
      .array(CountryCode)
      .min(1)
      .describe('Countries outside the jurisdiction that may hold its data while the exception lives.'),
    reason: z
      .string()
      .min(10, { error: 'expected a reason of at least 10 characters' })
      .meta({
        description:
          'Why the exception exists (at least 10 characters), e.g. the transfer assessment it rests on; shown in findings and snapshots.',
        examples: ['no in-country region; cross-border transfer assessment on file'],
      }),
    expires: z.iso.date({ error: 'expected a date like 2027-06-30' }).meta({
      description:
        'Last day the exception holds (UTC), as YYYY-MM-DD. After it, the exception is a finding and allows nothing.',
      examples: ['2027-06-30'],
    }),
    approvedBy: z
      .string()
      .optional()
      .meta({ description: 'Who approved the exception, for the record.', examples: ['dpo@example.com'] }),
  })
  .describe(
    "An exception to residency: lets this jurisdiction's data be written in the listed countries until `expires`.",
  );

/** How a cluster's audit log reaches the evidence store. */
export const AuditMode = z
  .enum(['pull', 'export'])
  .describe(
    "`pull`: Fleetward reads the log service and writes chunks; `export`: the cloud's own export path delivers.",
  );

export const Jurisdiction = z
  .strictObject({
    preset: z
      .enum(PRESET_IDS)
      .optional()
      .describe(
        'A built-in list of countries: `eu-gdpr` (the EU and Iceland, Liechtenstein, Norway), `in-dpdp` (India), `za-popia` (South Africa) or `ke-dpa` (Kenya). A preset or `countries` is required.',
      ),
    name: z
      .string()
      .optional()
      .meta({
        description:
          "Display name in reports and snapshots. Omitted: the preset's name, else the jurisdiction id.",
        examples: ['European Union'],
      }),
    countries: z
      .array(CountryCode)
      .min(1)
      .optional()
      .meta({
        description:
          "The countries covered; required without a preset, and replaces the preset's list when both are given. A country belongs to one jurisdiction at most.",
        examples: [['CH']],
      }),
    evidence: EvidenceBuckets.optional(),
    audit: z
      .strictObject({
        retentionDays: positiveInt()
          .default(400)
          .describe(
            'Days each evidence object must stay immutable: `fleetward onboard evidence` locks the buckets for this long, audit and snapshot refuse (and doctor reports) a bucket locked for less.',
          ),
        mode: AuditMode.default('pull').describe(
          "How this jurisdiction's clusters reach the archive: `pull` (Fleetward reads the log service within its quotas and writes chunks) or `export` (the cloud's own export path delivers into the evidence store, set up by `fleetward audit plan` / `apply`: a CloudWatch Logs subscription to Firehose, a Log Router sink, an AKS diagnostic setting). Advised for clusters whose pull falls behind.",
        ),
        clusters: z
          .record(z.string().min(1), AuditMode)
          .optional()
          .meta({
            description:
              'Per-cluster mode, by cluster id (as `fleetward discover` prints it), overriding `mode` for that cluster.',
            examples: [{ 'aws/111122223333/eu-central-1/payments': 'export' }],
          }),
        digestKey: z
          .string()
          .regex(/^arn:aws:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_-]+$/, {
            error:
              'expected a KMS key or alias ARN, like arn:aws:kms:eu-central-1:111122223333:alias/fleetward-audit-digests',
          })
          .optional()
          .meta({
            description:
              "The asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) that signs this jurisdiction's hourly audit digests, by key or alias ARN; its region must be inside the jurisdiction. Omitted: digests are not signed in the cloud (a finding), unless the CLI is given `--local-evidence` (a local key file, not compliant).",
            examples: ['arn:aws:kms:eu-central-1:111122223333:alias/fleetward-audit-digests'],
          }),
        digestDelayMinutes: z
          .int()
          .min(0)
          .max(1440)
          .default(20)
          .describe(
            "Minutes after an hour ends before its digest is written, so late deliveries (Firehose buffers, hourly sink files, Azure's hourly append blobs) are in it.",
          ),
        azureCategory: z
          .enum(['kube-audit', 'kube-audit-admin'])
          .default('kube-audit-admin')
          .describe(
            'The AKS diagnostic log category exported in `export` mode: `kube-audit-admin` (writes only, far smaller) or `kube-audit` (every request, reads included).',
          ),
      })
      .prefault({})
      .describe('Audit evidence: retention, pull or export, and the key that signs the hourly digests.'),
    backup: z
      .strictObject({
        schedule: z
          .string()
          .regex(/^rate\(\d+ (minute|hour|day)s?\)$/, { error: 'expected rate(N minutes|hours|days)' })
          .default('rate(1 day)')
          .meta({
            description:
              'How often each cluster gets a Velero Backup, as `rate(N minutes|hours|days)`: one Backup per window of this length (windows aligned to 1970-01-01 UTC). The deployed backup function runs hourly, so a rate under an hour does not back up more often.',
            examples: ['rate(1 day)', 'rate(6 hours)'],
          }),
        rpoHours: positiveInt()
          .default(24)
          .describe(
            'Recovery point objective, in hours: a newest completed backup older than this is a finding.',
          ),
        ttlDays: positiveInt()
          .default(30)
          .describe("Days Velero keeps each Backup before deleting it (the Backup's `ttl`)."),
        storageLocation: z
          .string()
          .default('default')
          .describe(
            'The Velero BackupStorageLocation backups go to; `default` means the one Velero marks as default. Its bucket must be inside the jurisdiction.',
          ),
        includedNamespaces: z
          .array(nonEmpty('a namespace'))
          .min(1)
          .default(['*'])
          .meta({
            description:
              'Namespaces to back up; `*` means every namespace except kube-system, kube-public, kube-node-lease, velero and drill scratch namespaces, resolved when the Backup is created.',
            examples: [['payments', 'ledger']],
          }),
      })
      .prefault({})
      .describe("Velero backups of this jurisdiction's clusters."),
    drill: z
      .strictObject({
        intervalDays: positiveInt()
          .default(30)
          .describe(
            'Days between restore drills of each cluster; a cluster whose last finished drill is older is a finding.',
          ),
        rtoMinutes: positiveInt()
          .default(60)
          .describe('Recovery time objective, in minutes: a drill whose restore takes longer fails.'),
        drillCluster: z
          .string()
          .optional()
          .meta({
            description:
              "Full id of the cluster that receives this jurisdiction's drills (as `fleetward discover` lists it); it must be in the same jurisdiction. Omitted: each cluster drills onto itself.",
            examples: ['aws/111111111111/eu-central-1/restore-drills'],
          }),
      })
      .prefault({})
      .describe(
        'Restore drills: the newest backup restored into scratch namespaces and checked, against the RTO.',
      ),
    exceptions: z
      .array(ResidencyException)
      .default([])
      .describe(
        'Exceptions to residency, e.g. for a country with no in-country cloud region; an expired one is a finding.',
      ),
  })
  .refine((j) => j.preset !== undefined || j.countries !== undefined, {
    error: 'expected a preset or a list of countries',
    path: ['countries'],
  })
  .describe(
    "One jurisdiction: the countries whose data must stay in them, where its evidence is kept, and its backup and drill targets. A cluster belongs to the jurisdiction of its region's country.",
  );

export const SecretRef = z.strictObject({
  from: z
    .enum(['env', 'ssm', 'secretsmanager'])
    .describe(
      'Where the value is read at run time: `env` (an environment variable, for local runs), `ssm` (an SSM SecureString parameter) or `secretsmanager` (a Secrets Manager secret string).',
    ),
  name: nonEmpty('a variable, parameter or secret name').meta({
    description: 'The environment variable, SSM parameter or Secrets Manager secret name.',
    examples: ['/fleetward/slack/default', 'fleetward/slack/eu-security', 'SLACK_WEBHOOK_URL'],
  }),
});

export const EventsConfig = z
  .strictObject({
    gcp: z
      .strictObject({
        audience: z.url({ error: 'expected the push audience URL' }).meta({
          description: "The audience of the push subscription's OIDC token (usually the endpoint URL).",
          examples: ['https://events.example.com/events/gcp'],
        }),
        serviceAccountEmail: z.email({ error: 'expected a service account email' }).meta({
          description: 'The service account the push subscription signs its tokens as; any other is refused.',
          examples: ['fleetward-push@example-project.iam.gserviceaccount.com'],
        }),
        jwksUrl: z
          .url()
          .default('https://www.googleapis.com/oauth2/v3/certs')
          .describe("Where Google's token signing keys are fetched."),
        issuers: z
          .array(nonEmpty('an issuer'))
          .min(1)
          .optional()
          .describe('Accepted token issuers. Omitted: https://accounts.google.com and accounts.google.com.'),
        maxTokenAgeSec: positiveInt()
          .max(3600, { error: 'expected at most 3600 seconds' })
          .default(3600)
          .describe(
            "Oldest push token accepted, by its `iat`, in seconds (at most 3600: Google's push tokens live one hour).",
          ),
      })
      .optional()
      .describe('GKE cluster notifications pushed by a Pub/Sub push subscription with an OIDC token.'),
    azure: z
      .strictObject({
        auth: z
          .discriminatedUnion(
            'type',
            [
              z
                .strictObject({
                  type: z.literal('secret').describe('Selects a shared secret.'),
                  secret: SecretRef.describe('Where the shared secret is read.'),
                })
                .describe(
                  'A shared secret in the endpoint URL (`?code=`) or the `x-fleetward-secret` delivery header, compared in constant time.',
                ),
              z
                .strictObject({
                  type: z.literal('entra').describe('Selects Entra ID tokens.'),
                  tenantId: Guid('a tenant id').meta({
                    description: 'The tenant that issues the tokens.',
                    examples: [GUID_EXAMPLE],
                  }),
                  audience: nonEmpty('an audience').meta({
                    description:
                      'The audience the tokens must carry: the Application ID URI (or client id) of the app registration protecting the endpoint.',
                    examples: ['api://fleetward-events'],
                  }),
                  clientAppId: Guid('an application id')
                    .optional()
                    .describe(
                      "The application the token must be issued to (`azp`/`appid`). Omitted: Event Grid's own application id.",
                    ),
                  jwksUrl: z
                    .url()
                    .optional()
                    .describe(
                      "Where the tenant's signing keys are fetched. Omitted: https://login.microsoftonline.com/<tenantId>/discovery/v2.0/keys.",
                    ),
                })
                .describe(
                  'Entra ID protected webhook delivery: a bearer token for `audience` from the tenant.',
                ),
            ],
            { error: 'expected type "secret" or "entra"' },
          )
          .describe(
            'How a delivery proves it comes from our Event Grid subscription: `type` is `secret` or `entra`.',
          ),
      })
      .optional()
      .describe('AKS events delivered by an Event Grid subscription (webhook, CloudEvents 1.0).'),
  })
  .describe(
    'How the cloud event endpoints of the home deployment authenticate their senders. An endpoint without its section refuses every delivery.',
  );

export const Severity = z.enum(['info', 'low', 'medium', 'high', 'critical']);

export const SlackConfig = z
  .strictObject({
    webhooks: z
      .record(
        z.string().regex(/^[a-z0-9-]+$/),
        SecretRef.describe(
          'Where the webhook URL is read: the URL itself, or JSON `{"url": "..."}` in Secrets Manager; https (http only on loopback).',
        ),
      )
      .describe(
        'Incoming webhooks by name (lower-case letters, digits, hyphens). The config never holds a URL, only where to read it; deployed functions may read SSM parameters under /fleetward/ and secrets under fleetward/.',
      ),
    routes: z
      .array(
        z.strictObject({
          jurisdiction: z
            .string()
            .optional()
            .meta({
              description:
                'Only findings of this jurisdiction (a key of `jurisdictions`). Omitted: every jurisdiction.',
              examples: ['eu'],
            }),
          minSeverity: Severity.default('info').describe(
            'Lowest severity sent: info < low < medium < high < critical.',
          ),
          webhook: nonEmpty('a webhook name').meta({
            description: 'Name of a webhook in `slack.webhooks`.',
            examples: ['default'],
          }),
        }),
      )
      .default([])
      .describe(
        "Which findings go where: after each job, every route sends one digest of its jurisdiction's new findings and control changes at or above `minSeverity`; a route with nothing new sends nothing. Empty: nothing is sent.",
      ),
    maxFindings: positiveInt()
      .default(10)
      .describe('Findings listed one by one in a digest before "and N more".'),
  })
  .describe("Slack digests of each job's new findings, sent to incoming webhooks. Omitted: nothing is sent.");

export const StateConfig = z
  .discriminatedUnion(
    'type',
    [
      z
        .strictObject({
          type: z.literal('sqlite').describe('Selects a local SQLite file.'),
          path: z
            .string()
            .default('.fleetward/state.db')
            .describe(`The SQLite database file (\`:memory:\` for a throw-away store). ${RELATIVE}`),
        })
        .describe('A local SQLite file, for CLI runs.'),
      z
        .strictObject({
          type: z.literal('dynamodb').describe('Selects a DynamoDB table.'),
          table: nonEmpty('a table name').meta({
            description: 'The table name.',
            examples: ['fleetward-state'],
          }),
          region: RegionName.meta({ description: "The table's AWS region.", examples: ['eu-central-1'] }),
          endpoint: EndpointUrl.optional().describe('DynamoDB endpoint, e.g. a local emulator.'),
        })
        .describe('A DynamoDB table.'),
    ],
    { error: 'expected type "sqlite" or "dynamodb"' },
  )
  .describe(
    'Where Fleetward keeps its state (inventory, findings, job records): `type` is `sqlite` or `dynamodb`. A deployment uses its own DynamoDB table instead (FLEETWARD_STATE_TABLE).',
  );

export const KubeAccessConfig = z
  .strictObject({
    concurrency: positiveInt()
      .default(16)
      .describe(
        'Kubernetes API calls in flight at once, across clusters; the backup, reconcile and drill jobs work on up to four times as many clusters at once.',
      ),
    timeoutMs: positiveInt()
      .default(15_000)
      .describe('Timeout of one attempt of a Kubernetes API call, in milliseconds.'),
    maxAttempts: positiveInt()
      .default(3)
      .describe(
        'Attempts per Kubernetes API call, the first included: 429, 5xx and timeouts are retried with backoff.',
      ),
    gcp: z
      .discriminatedUnion('auth', [
        z
          .strictObject({ auth: z.literal('google').describe('Selects a Google access token.') })
          .describe('A Google OAuth access token from the `clouds.gcp` credentials.'),
        z
          .strictObject({
            auth: z.literal('token-file').describe('Selects a token file.'),
            file: nonEmpty('a token file path').describe(
              `File holding the bearer token, read again when a cluster refuses it. ${RELATIVE}`,
            ),
          })
          .describe('A token another process keeps fresh in a file.'),
      ])
      .default({ auth: 'google' })
      .describe('How Fleetward gets a token for GKE clusters: `auth` is `google` or `token-file`.'),
    azure: z
      .discriminatedUnion('auth', [
        z
          .strictObject({ auth: z.literal('aad').describe('Selects an Entra ID token.') })
          .describe('An Entra ID token for the AKS server application, from `clouds.azure.credential`.'),
        z
          .strictObject({
            auth: z.literal('cluster-user-credentials').describe('Selects the cluster user credentials.'),
          })
          .describe(
            'The token of the kubeconfig ARM returns (listClusterUserCredential), for clusters with local accounts.',
          ),
      ])
      .default({ auth: 'aad' })
      .describe(
        'How Fleetward gets a token for AKS clusters: `auth` is `aad` or `cluster-user-credentials`.',
      ),
    overrides: z
      .array(
        z.strictObject({
          cluster: nonEmpty('a cluster id').meta({
            description: 'Full id of the cluster, as `fleetward discover` lists it.',
            examples: ['aws/111111111111/eu-central-1/payments'],
          }),
          endpoint: EndpointUrl.meta({
            description: "URL of the cluster's API server through the proxy, bastion or private link.",
            examples: ['https://payments-eks.proxy.example.internal'],
          }),
          caFile: z
            .string()
            .optional()
            .describe(
              `PEM file of the CA that signed that endpoint's certificate. ${RELATIVE} Omitted: the trusted public roots.`,
            ),
        }),
      )
      .default([])
      .describe(
        "Reach a cluster's API through another address (a proxy, bastion or private link) instead of the endpoint its cloud reports; the cloud is then asked only for tokens.",
      ),
  })
  .describe(
    "How Fleetward reaches each cluster's Kubernetes API (backups, drills). Tokens are minted per run, never stored.",
  );

export const VeleroConfig = z
  .strictObject({
    namespace: z
      .string()
      .default('velero')
      .describe('Namespace Velero runs in on every cluster (its Backups, Restores and storage locations).'),
    scratchPrefix: z
      .string()
      .regex(/^fw-drill-[a-z0-9-]*$/, { error: 'expected a prefix starting with "fw-drill-"' })
      .default('fw-drill-')
      .describe(
        'Prefix of the scratch namespaces restore drills restore into; always starts with `fw-drill-`. Only namespaces a drill created are ever deleted.',
      ),
  })
  .describe('Where Velero runs, and how drills name their scratch namespaces.');

/** Keys Fleetward derives itself and may write; everything else it only reports. */
export const DERIVED_TAG_KEYS = ['jurisdiction', 'region', 'cloud', 'managed-by', 'country'] as const;

const RegexSource = z.string().refine(
  (source) => {
    try {
      new RegExp(source, 'u');
      return true;
    } catch {
      return false;
    }
  },
  { error: 'expected a valid regular expression' },
);

export const RequiredTag = z
  .strictObject({
    values: z
      .array(z.string())
      .min(1)
      .optional()
      .meta({
        description: 'Allowed values; any other value is a finding.',
        examples: [['prod', 'staging', 'dev']],
      }),
    pattern: RegexSource.optional().meta({
      description: 'A regular expression (JavaScript, Unicode) every value must match in full.',
      examples: ['[a-z0-9._-]+@example\\.com'],
    }),
    default: z
      .string()
      .optional()
      .describe(
        'Written when the tag is missing; it must satisfy `values` and `pattern`. Without a default a missing tag is a finding, never invented.',
      ),
    overwrite: z
      .boolean()
      .optional()
      .describe(
        'Lets Fleetward replace a value the cluster already holds under this key: with the derived value (a key in `derived`), or with `default` in place of a value the policy does not allow. Without it such a value is a finding and is never overwritten.',
      ),
  })
  .refine((t) => t.default === undefined || t.values === undefined || t.values.includes(t.default), {
    error: 'expected the default to be one of the allowed values',
    path: ['default'],
  })
  .refine(
    (t) =>
      t.default === undefined ||
      t.pattern === undefined ||
      new RegExp(`^(?:${t.pattern})$`, 'u').test(t.default),
    {
      error: 'expected the default to match the pattern',
      path: ['default'],
    },
  )
  .describe('The rule of one required tag; an empty rule only requires the key.');

export const TagPolicy = z
  .strictObject({
    required: z
      .record(z.string().min(1), RequiredTag)
      .default({})
      .describe(
        'Tags every cluster must carry, by key. A missing tag gets its `default`, else is a finding; a value the rule does not allow is a finding.',
      ),
    derived: z
      .array(z.enum(DERIVED_TAG_KEYS))
      .default(['jurisdiction', 'region', 'cloud', 'managed-by'])
      .describe(
        'Keys Fleetward fills from what it knows: `jurisdiction` (its id), `region`, `cloud`, `managed-by` (`fleetward`) and `country` (lower-case ISO code). A key already holding another value is a finding.',
      ),
  })
  .describe(
    'The tags (GCP labels) every cluster is checked against; `fleetward tags plan` shows the changes.',
  );

const Threshold = z.strictObject({
  percent: z
    .number()
    .positive({ error: 'expected a positive percentage' })
    .max(1000)
    .meta({ description: 'Percent of the budgeted amount (at most 1000).', examples: [80, 100] }),
  spend: z
    .enum(['actual', 'forecast'])
    .describe('Alert on the `actual` spend so far, or on the `forecast` spend for the period.'),
});

const BudgetCommon = {
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,48}$/, { error: 'expected a lower-case name of at most 49 characters' })
    .meta({
      description:
        "Unique among budgets (lower-case letters, digits, hyphens; at most 49 characters). The cloud's budget is named `fleetward-<name>`, which marks it as Fleetward's.",
      examples: ['payments-prod'],
    }),
  amount: z
    .number()
    .positive({ error: 'expected a positive amount' })
    .meta({ description: 'Budgeted amount per period, in `currency`.', examples: [5000] }),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, { error: 'expected an ISO 4217 currency code like "EUR"' })
    .meta({
      description:
        'ISO 4217 currency code; it must be the billing currency of the account, billing account or subscription, else the budget is refused.',
      examples: ['USD', 'EUR'],
    }),
  period: z
    .enum(['monthly', 'quarterly', 'annually'])
    .default('monthly')
    .describe('Budget period: a calendar month, quarter or year.'),
  thresholds: z
    .array(Threshold)
    .min(1)
    .max(5)
    .describe('Alert thresholds (1 to 5); each alerts the `notify` targets once crossed.'),
};

const TagFilter = z
  .strictObject({
    key: nonEmpty('a tag key').meta({
      description: 'Tag key (on AWS, the cost-allocation tag without its `user:` prefix).',
      examples: ['cost-center'],
    }),
    values: z
      .array(z.string())
      .min(1)
      .meta({ description: 'Tag values whose costs count.', examples: [['payments']] }),
  })
  .describe('Count only the costs of resources carrying this tag with one of these values.');

const Emails = z
  .array(z.email())
  .default([])
  .meta({
    description: 'Email addresses alerted at each threshold.',
    examples: [['finops@example.com']],
  });

export const Budget = z
  .discriminatedUnion(
    'cloud',
    [
      z
        .strictObject({
          cloud: z.literal('aws').describe('Selects an AWS budget.'),
          ...BudgetCommon,
          scope: z
            .strictObject({
              account: AwsAccountId.meta({
                description: 'The AWS account the budget lives in and counts.',
                examples: ['111111111111'],
              }),
              tagFilter: TagFilter.optional().describe(
                'Count only costs carrying this cost-allocation tag (`user:<key>`, activated in Billing) with one of these values.',
              ),
            })
            .describe('What the budget counts.'),
          notify: z
            .strictObject({
              emails: Emails,
              snsTopicArn: z
                .string()
                .regex(/^arn:aws[a-z-]*:sns:/, { error: 'expected an SNS topic ARN' })
                .optional()
                .meta({
                  description:
                    'SNS topic alerted at each threshold; its policy must let budgets.amazonaws.com publish.',
                  examples: ['arn:aws:sns:eu-central-1:222222222222:fleetward-budgets'],
                }),
            })
            .refine((n) => n.emails.length > 0 || n.snsTopicArn !== undefined, {
              error: 'expected emails or an SNS topic',
            })
            .describe('Who AWS alerts: email addresses, an SNS topic, or both (at least one).'),
        })
        .describe('An AWS Budgets cost budget of one account.'),
      z
        .strictObject({
          cloud: z.literal('gcp').describe('Selects a Cloud Billing budget.'),
          ...BudgetCommon,
          scope: z
            .strictObject({
              billingAccount: z
                .string()
                .regex(/^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$/, {
                  error: 'expected a billing account id like 000000-000000-000000',
                })
                .meta({
                  description: 'The billing account the budget lives in.',
                  examples: ['000000-000000-000000'],
                }),
              projects: z
                .array(z.string())
                .default([])
                .meta({
                  description: 'Project ids whose costs count. Empty: every project of the billing account.',
                  examples: [['payments-prod-eu']],
                }),
              labels: z
                .record(
                  z.string(),
                  z.array(z.string()).min(1).describe('Label values whose costs count, for this label key.'),
                )
                .default({})
                .meta({
                  description: 'Count only the costs of resources carrying these labels, by label key.',
                  examples: [{ team: ['payments'] }],
                }),
            })
            .describe('What the budget counts.'),
          notify: z
            .strictObject({
              pubsubTopic: z
                .string()
                .regex(/^projects\/[^/]+\/topics\/[^/]+$/, { error: 'expected projects/<p>/topics/<t>' })
                .optional()
                .meta({
                  description: 'Pub/Sub topic that receives the budget notifications.',
                  examples: ['projects/payments-prod-eu/topics/budgets'],
                }),
              channels: z
                .array(z.string())
                .max(5)
                .default([])
                .meta({
                  description:
                    'Cloud Monitoring notification channels alerted at each threshold (at most 5).',
                  examples: [['projects/payments-prod-eu/notificationChannels/1234567890']],
                }),
            })
            .describe(
              "Where Cloud Billing sends alerts besides its default emails to the billing account's administrators and users.",
            ),
        })
        .describe('A Cloud Billing budget of a billing account.'),
      z
        .strictObject({
          cloud: z.literal('azure').describe('Selects an Azure Consumption budget.'),
          ...BudgetCommon,
          scope: z
            .strictObject({
              subscription: Guid('a subscription id').meta({
                description: 'The subscription the budget lives in and counts.',
                examples: [GUID_EXAMPLE],
              }),
              resourceGroup: z
                .string()
                .optional()
                .describe('Count only this resource group; the budget then covers only its clusters.'),
              tagFilter: TagFilter.optional(),
            })
            .describe('What the budget counts.'),
          notify: z
            .strictObject({
              emails: Emails,
              actionGroups: z
                .array(z.string())
                .default([])
                .meta({
                  description: 'Resource ids of the action groups alerted at each threshold.',
                  examples: [
                    [
                      `/subscriptions/${GUID_EXAMPLE}/resourceGroups/ops/providers/microsoft.insights/actionGroups/finops`,
                    ],
                  ],
                }),
            })
            .refine((n) => n.emails.length > 0 || n.actionGroups.length > 0, {
              error: 'expected emails or action groups',
            })
            .describe('Who Azure alerts: email addresses, action groups, or both (at least one).'),
        })
        .describe('An Azure Consumption budget of a subscription or one of its resource groups.'),
    ],
    { error: 'expected cloud "aws", "gcp" or "azure"' },
  )
  .describe('One budget: `cloud` is `aws`, `gcp` or `azure`.');

export const PoliciesConfig = z
  .strictObject({
    maxChanges: positiveInt()
      .default(25)
      .describe(
        'Most changes one apply may make: clusters whose tags change (tags apply, reconcile-tags) or budgets created, updated or deleted (budgets apply). A larger plan is refused whole and nothing is written; `--max-changes` overrides it for one run.',
      ),
    tags: TagPolicy.prefault({}),
    discovery: z
      .strictObject({
        probeKubeconfig: z
          .boolean()
          .default(true)
          .describe(
            "Whether discovery calls each kubeconfig context's API (`/version`) for its Kubernetes version and reachability; false: no call, and the status stays unknown.",
          ),
      })
      .prefault({})
      .describe('Discovery options.'),
  })
  .describe('What mutating jobs may change, the tag policy, and discovery options.');

export const FleetConfig = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }).describe('Version of this file format: 1.'),
    stage: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('dev')
      .meta({
        description:
          'Stage name (lower-case letters, digits, hyphens), shown in Slack digests and snapshots. Outside `prod` the scheduled reconcile-tags and reconcile-budgets functions only plan; by hand, `tags apply` and `budgets apply` write in every stage.',
        examples: ['dev', 'prod'],
      }),
    clouds: z
      .strictObject({
        aws: AwsConfig.optional(),
        gcp: GcpConfig.optional(),
        azure: AzureConfig.optional(),
        kubeconfig: z
          .array(KubeconfigSource)
          .optional()
          .describe(
            'Clusters named by kubeconfig contexts: on-premises, kind, or any cluster outside the three clouds. They are inventoried, backed up and drilled, never tagged.',
          ),
      })
      .refine((c) => Object.values(c).some((v) => v !== undefined), { error: 'expected at least one cloud' })
      .describe('Where Fleetward looks for clusters; at least one of `aws`, `gcp`, `azure`, `kubeconfig`.'),
    jurisdictions: z.record(JurisdictionId, Jurisdiction).meta({
      description:
        'Jurisdictions by id (lower-case, e.g. `eu`; `unassigned` is reserved): where cluster data may live. A cluster in a country of no jurisdiction is `unassigned`: not backed up, and a finding.',
      examples: [{ eu: { preset: 'eu-gdpr' } }],
    }),
    policies: PoliciesConfig.prefault({}),
    kubeAccess: KubeAccessConfig.prefault({}),
    velero: VeleroConfig.prefault({}),
    budgets: z
      .array(Budget)
      .default([])
      .describe(
        "Budgets as desired state: `budgets apply` creates missing ones, updates drifted ones and deletes Fleetward's own (named `fleetward-<name>`) once they leave this list. An account, project or subscription running a cluster without a budget is a finding.",
      ),
    slack: SlackConfig.optional(),
    state: StateConfig.default({ type: 'sqlite', path: '.fleetward/state.db' }),
    events: EventsConfig.optional(),
  })
  .superRefine((cfg, ctx) => {
    const names = new Set<string>();
    cfg.budgets.forEach((b, i) => {
      if (names.has(b.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['budgets', i, 'name'],
          message: `duplicate budget name "${b.name}"`,
        });
      }
      names.add(b.name);
    });
    const hooks = new Set(Object.keys(cfg.slack?.webhooks ?? {}));
    cfg.slack?.routes.forEach((route, i) => {
      if (!hooks.has(route.webhook)) {
        ctx.addIssue({
          code: 'custom',
          path: ['slack', 'routes', i, 'webhook'],
          message: `unknown webhook "${route.webhook}"`,
        });
      }
      if (route.jurisdiction && !(route.jurisdiction in cfg.jurisdictions)) {
        ctx.addIssue({
          code: 'custom',
          path: ['slack', 'routes', i, 'jurisdiction'],
          message: `unknown jurisdiction "${route.jurisdiction}"`,
        });
      }
    });
  })
  .describe(
    'Fleetward fleet configuration: the clouds and clusters to watch, the jurisdictions their data must stay in, and the policies Fleetward enforces. Check it with `fleetward config validate`.',
  );

export type FleetConfig = z.infer<typeof FleetConfig>;
export type AwsConfig = z.infer<typeof AwsConfig>;
export type AwsAccount = z.infer<typeof AwsAccount>;
export type GcpConfig = z.infer<typeof GcpConfig>;
export type AzureConfig = z.infer<typeof AzureConfig>;
export type GcpWorkloadIdentity = z.infer<typeof GcpWorkloadIdentity>;
export type AzureAwsFederation = Extract<z.infer<typeof AzureCredential>, { type: 'aws-federation' }>;
export type KubeconfigSource = z.infer<typeof KubeconfigSource>;
export type JurisdictionConfig = z.infer<typeof Jurisdiction>;
export type ResidencyException = z.infer<typeof ResidencyException>;
export type KubeAccessConfig = z.infer<typeof KubeAccessConfig>;
export type VeleroConfig = z.infer<typeof VeleroConfig>;
export type TagPolicy = z.infer<typeof TagPolicy>;
export type BudgetConfig = z.infer<typeof Budget>;
export type EventsConfig = z.infer<typeof EventsConfig>;
