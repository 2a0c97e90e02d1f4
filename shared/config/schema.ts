/**
 * The `fleet.yaml` schema. Strict objects everywhere: an unknown key is a typo and
 * fails validation, naming its path. `fleetward config schema` exports it as JSON Schema.
 */
import { z } from 'zod';

const positiveInt = () =>
  z.int({ error: 'expected a positive integer' }).positive({ error: 'expected a positive integer' });
const nonEmpty = (what: string) =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

/** ISO 3166-1 alpha-2 country code, upper-case. */
export const CountryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, { error: 'expected an ISO 3166-1 alpha-2 country code like "DE"' });

/** A cloud region name as the cloud spells it (`eu-central-1`, `europe-west3`, `germanywestcentral`). */
export const RegionName = z
  .string()
  .regex(/^[a-z][a-z0-9-]*[a-z0-9]$/, { error: 'expected a region name like "eu-central-1"' });

const JurisdictionId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,30}$/, { error: 'expected a lower-case id like "eu"' })
  .refine((id) => id !== 'unassigned', { error: '"unassigned" is reserved' });

export const PRESET_IDS = ['eu-gdpr', 'in-dpdp', 'za-popia', 'ke-dpa'] as const;

/** Loopback or https endpoint override for an emulator or a private endpoint. */
const EndpointUrl = z.url({ error: 'expected a URL like "https://example.internal"' });

export const AwsAccount = z.strictObject({
  id: z.string().regex(/^\d{12}$/, { error: 'expected a 12-digit AWS account id' }),
  alias: z.string().optional(),
  roleArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, { error: 'expected an IAM role ARN' }),
  externalId: z.string().optional(),
  regions: z.union([z.literal('all'), z.array(RegionName).min(1)], {
    error: 'expected "all" or a list of region names',
  }),
});

export const AwsConfig = z.strictObject({
  /** Endpoint for every AWS service (an emulator such as moto, or a proxy). */
  endpoint: EndpointUrl.optional(),
  /**
   * Base credentials used to assume each account's role: a named profile of a shared
   * credentials file. Omitted: the SDK's default chain (the Lambda role when deployed).
   */
  credentials: z
    .strictObject({ profile: nonEmpty('a profile name'), file: z.string().optional() })
    .optional(),
  /** Region used for STS and for listing regions when an account says `all`. */
  homeRegion: RegionName.default('us-east-1'),
  /** Most AWS API calls in flight at once, across all accounts and regions. */
  concurrency: positiveInt().default(16),
  /** Per-attempt timeout of one AWS call, in milliseconds. */
  timeoutMs: positiveInt().default(10_000),
  /** Attempts per call including the first (standard retry: backoff, jitter, Retry-After). */
  maxAttempts: positiveInt().default(4),
  accounts: z.array(AwsAccount).min(1, { error: 'expected at least one account' }),
});

export const GcpProject = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/, { error: 'expected a GCP project id' }),
  /**
   * The project number, as GKE cluster notifications name the project. Optional: when absent it
   * is resolved once through Cloud Resource Manager (`resourcemanager.projects.get`).
   */
  number: z
    .preprocess(
      (value) => (typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value),
      z.string({ error: 'expected a GCP project number (digits only)' }).regex(/^[1-9][0-9]{0,18}$/, {
        error: 'expected a GCP project number (digits only)',
      }),
    )
    .optional(),
});

/**
 * Workload Identity Federation from the AWS identity Fleetward runs as (the Lambda role): Google's
 * STS takes a signed AWS `GetCallerIdentity` request as the subject token, so no key file and no
 * secret is stored anywhere. Fleetward generates the `external_account` configuration from these
 * fields (`gcpExternalAccountConfig`, shared/clouds/gcp/federation.ts) and loads it with
 * google-auth-library's `AwsClient`.
 */
export const GcpWorkloadIdentity = z.strictObject({
  /** Number (not id) of the project that holds the workload identity pool. */
  projectNumber: z
    .preprocess(
      (value) => (typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : value),
      z.string({ error: 'expected a GCP project number (digits only)' }).regex(/^[1-9][0-9]{0,18}$/, {
        error: 'expected a GCP project number (digits only)',
      }),
    )
    .describe('number of the project holding the workload identity pool'),
  /** Workload identity pool id (4-32 characters: lower-case letters, digits, hyphens). */
  poolId: z
    .string()
    .regex(/^[a-z0-9-]{4,32}$/, { error: 'expected a workload identity pool id (4-32 of a-z, 0-9, -)' }),
  /** Provider id inside the pool (4-32 characters: lower-case letters, digits, hyphens). */
  providerId: z
    .string()
    .regex(/^[a-z0-9-]{4,32}$/, { error: 'expected a workload identity provider id (4-32 of a-z, 0-9, -)' }),
  /**
   * Service account to impersonate with the federated token (`iam.serviceAccounts.getAccessToken`);
   * omitted: the federated principal is granted roles directly.
   */
  serviceAccount: z
    .email({ error: 'expected a service account email' })
    .regex(/\.gserviceaccount\.com$/, { error: 'expected a service account email (…gserviceaccount.com)' })
    .optional(),
  /** Google STS token endpoint (default https://sts.googleapis.com/v1/token), e.g. a local fake. */
  tokenUrl: EndpointUrl.optional(),
  /** IAM Service Account Credentials endpoint (default https://iamcredentials.googleapis.com), e.g. a local fake. */
  impersonationEndpoint: EndpointUrl.optional(),
});

export const GcpConfig = z
  .strictObject({
    /** `host:port` of the GKE API (default container.googleapis.com:443). */
    endpoint: z.string().optional(),
    /** Cloud Logging API endpoint (default https://logging.googleapis.com), e.g. a local emulator. */
    loggingEndpoint: EndpointUrl.optional(),
    /** `host:port` of the Cloud Billing Budget API (default billingbudgets.googleapis.com:443). */
    billingBudgetsEndpoint: z.string().optional(),
    /** Cloud Storage JSON API endpoint (default https://storage.googleapis.com), e.g. a local emulator. */
    storageEndpoint: EndpointUrl.optional(),
    /** Cloud Resource Manager endpoint (default https://cloudresourcemanager.googleapis.com), e.g. a local fake. */
    resourceManagerEndpoint: EndpointUrl.optional(),
    /** No TLS and no credentials for GKE (gRPC) and Cloud Storage: only for local emulators on loopback. */
    insecure: z.boolean().default(false),
    /**
     * A credentials file (a service-account key or an `external_account` config written by hand);
     * default: application default credentials. Mutually exclusive with `workloadIdentity`.
     */
    credentialsFile: z.string().optional(),
    /** Workload Identity Federation from the AWS role Fleetward runs as: no stored secret. */
    workloadIdentity: GcpWorkloadIdentity.optional(),
    concurrency: positiveInt().default(8),
    timeoutMs: positiveInt().default(30_000),
    maxAttempts: positiveInt().default(4),
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
      }),
  })
  .superRefine((gcp, ctx) => {
    if (gcp.credentialsFile !== undefined && gcp.workloadIdentity !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['workloadIdentity'],
        message: 'expected only one of credentialsFile and workloadIdentity',
      });
    }
  });

/** The audience Entra ID expects in a federated client assertion (public cloud). */
export const AZURE_FEDERATION_AUDIENCE = 'api://AzureADTokenExchange';

export const AzureCredential = z.discriminatedUnion(
  'type',
  [
    /** DefaultAzureCredential: workload identity, managed identity, environment, CLI. */
    z.strictObject({ type: z.literal('default') }),
    /** Federated client assertion (workload identity federation from AWS or a token file). */
    z.strictObject({
      type: z.literal('workload-identity'),
      tenantId: z.guid({ error: 'expected a tenant id (uuid)' }),
      clientId: z.guid({ error: 'expected a client id (uuid)' }),
      tokenFile: z.string().optional(),
    }),
    /**
     * Federated client assertion whose JWT comes from AWS IAM outbound identity federation:
     * `sts:GetWebIdentityToken` (audience `api://AzureADTokenExchange`, the regional STS endpoint)
     * signed for the AWS role Fleetward runs as. Nothing secret is configured or stored.
     */
    z.strictObject({
      type: z.literal('aws-federation'),
      tenantId: z.guid({ error: 'expected a tenant id (uuid)' }),
      clientId: z.guid({ error: 'expected a client id (uuid)' }),
      /** Entra ID authority host (default https://login.microsoftonline.com; sovereign clouds differ). */
      authorityHost: z
        .url({ protocol: /^https$/, error: 'expected an https URL like "https://login.microsoftonline.com"' })
        .optional(),
      /** Extra CA certificate (PEM file) trusted for `authorityHost` only, e.g. a local emulator's. */
      authorityCaFile: nonEmpty('a file path').optional(),
      /** Audience of the web identity token (default api://AzureADTokenExchange). */
      audience: nonEmpty('an audience').default(AZURE_FEDERATION_AUDIENCE),
      /**
       * Region of the STS endpoint that issues the token (GetWebIdentityToken has no global
       * endpoint); default the region the function runs in (`AWS_REGION`).
       */
      stsRegion: RegionName.optional(),
      /** STS endpoint override (default https://sts.<stsRegion>.amazonaws.com), e.g. a local emulator. */
      stsEndpoint: EndpointUrl.optional(),
      /** Lifetime asked for the web identity token, 60-3600 s (STS default 300). */
      tokenLifetimeSec: z
        .int({ error: 'expected seconds between 60 and 3600' })
        .min(60, { error: 'expected seconds between 60 and 3600' })
        .max(3600, { error: 'expected seconds between 60 and 3600' })
        .default(300),
    }),
    /** A bearer token read at call time from an environment variable or a file (short-lived, e.g. `az account get-access-token`). */
    z
      .strictObject({
        type: z.literal('access-token'),
        env: nonEmpty('an environment variable name').optional(),
        file: nonEmpty('a file path').optional(),
      })
      .refine((c) => (c.env === undefined) !== (c.file === undefined), {
        error: 'expected exactly one of env or file',
      }),
  ],
  { error: 'expected type "default", "workload-identity", "aws-federation" or "access-token"' },
);

export const AzureSubscription = z.strictObject({
  id: z.guid({ error: 'expected a subscription id (uuid)' }),
});

export const AzureConfig = z.strictObject({
  /** Azure Resource Manager endpoint (https only). */
  endpoint: EndpointUrl.default('https://management.azure.com'),
  /** Log Analytics query endpoint (default https://api.loganalytics.io). */
  logAnalyticsEndpoint: EndpointUrl.optional(),
  /**
   * Shared-key access to evidence storage accounts, read from a file holding the account key
   * (for emulators and accounts without Entra ID data access); default: the credential above.
   */
  storageKeyFile: z.string().optional(),
  /** Blob endpoint of a storage account; `{account}` is replaced (default https://{account}.blob.core.windows.net). */
  blobEndpoint: z.string().default('https://{account}.blob.core.windows.net'),
  /** Extra CA certificate (PEM file) trusted for the ARM endpoint, e.g. a local emulator's. */
  caFile: z.string().optional(),
  credential: AzureCredential.default({ type: 'default' }),
  concurrency: positiveInt().default(8),
  timeoutMs: positiveInt().default(30_000),
  maxAttempts: positiveInt().default(4),
  subscriptions: z.array(AzureSubscription).min(1, { error: 'expected at least one subscription' }),
});

export const KubeContext = z.strictObject({
  name: nonEmpty('a context name'),
  /** Whose region names `region` uses; `country` overrides the lookup (on-premises clusters). */
  cloud: z.enum(['aws', 'gcp', 'azure']).optional(),
  region: nonEmpty('a region'),
  country: CountryCode.optional(),
});

export const KubeconfigSource = z.strictObject({
  /** Short name used in cluster ids (`kubeconfig/<alias>/...`). */
  alias: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'expected a lower-case alias' }),
  file: nonEmpty('a kubeconfig file path'),
  timeoutMs: positiveInt().default(10_000),
  contexts: z.array(KubeContext).min(1, { error: 'expected at least one context' }),
});

export const EvidenceBuckets = z.strictObject({
  aws: z
    .strictObject({
      bucket: nonEmpty('a bucket name'),
      region: RegionName,
      /** The account that owns the bucket, sent as `ExpectedBucketOwner` (default: the account of the function's own credentials). */
      account: z
        .string()
        .regex(/^\d{12}$/, { error: 'expected a 12-digit AWS account id' })
        .optional(),
    })
    .optional(),
  gcp: z.strictObject({ bucket: nonEmpty('a bucket name'), location: RegionName }).optional(),
  azure: z
    .strictObject({
      storageAccount: nonEmpty('a storage account'),
      container: nonEmpty('a container'),
      region: RegionName,
      /** Where the storage account lives in ARM (its location is checked against the jurisdiction). */
      resourceGroup: z.string().optional(),
      subscriptionId: z.guid().optional(),
    })
    .optional(),
});

export const ResidencyException = z.strictObject({
  /** Countries outside the jurisdiction that may hold its data while the exception lives. */
  allowCountries: z.array(CountryCode).min(1),
  reason: z.string().min(10, { error: 'expected a reason of at least 10 characters' }),
  /** Last day the exception holds (YYYY-MM-DD). */
  expires: z.iso.date({ error: 'expected a date like 2027-06-30' }),
  approvedBy: z.string().optional(),
});

export const Jurisdiction = z
  .strictObject({
    preset: z.enum(PRESET_IDS).optional(),
    name: z.string().optional(),
    /** Countries (ISO alpha-2) covered; required without a preset, replaces the preset's list with one. */
    countries: z.array(CountryCode).min(1).optional(),
    evidence: EvidenceBuckets.optional(),
    audit: z.strictObject({ retentionDays: positiveInt().default(400) }).prefault({}),
    backup: z
      .strictObject({
        /** How often each cluster gets a Backup: one Backup per window of this rate. */
        schedule: z
          .string()
          .regex(/^rate\(\d+ (minute|hour|day)s?\)$/, { error: 'expected rate(N minutes|hours|days)' })
          .default('rate(1 day)'),
        rpoHours: positiveInt().default(24),
        ttlDays: positiveInt().default(30),
        storageLocation: z.string().default('default'),
        /** Namespaces to back up; `*` means every namespace except system ones, resolved when the Backup is created. */
        includedNamespaces: z.array(nonEmpty('a namespace')).min(1).default(['*']),
      })
      .prefault({}),
    drill: z
      .strictObject({
        intervalDays: positiveInt().default(30),
        rtoMinutes: positiveInt().default(60),
        /** Cluster id that receives drills for this jurisdiction (default: the source cluster). */
        drillCluster: z.string().optional(),
      })
      .prefault({}),
    exceptions: z.array(ResidencyException).default([]),
  })
  .refine((j) => j.preset !== undefined || j.countries !== undefined, {
    error: 'expected a preset or a list of countries',
    path: ['countries'],
  });

export const SecretRef = z.strictObject({
  /** `env` (local runs), `ssm` (SecureString parameter) or `secretsmanager`. */
  from: z.enum(['env', 'ssm', 'secretsmanager']),
  name: nonEmpty('a variable, parameter or secret name'),
});

/** Authentication of the cloud event endpoints (Pub/Sub push, Event Grid webhook). */
export const EventsConfig = z.strictObject({
  gcp: z
    .strictObject({
      /** The audience of the push subscription's OIDC token (usually the endpoint URL). */
      audience: z.url({ error: 'expected the push audience URL' }),
      /** The service account the push subscription signs its tokens as. */
      serviceAccountEmail: z.email({ error: 'expected a service account email' }),
      jwksUrl: z.url().default('https://www.googleapis.com/oauth2/v3/certs'),
      issuers: z.array(nonEmpty('an issuer')).min(1).optional(),
      /** Oldest push token accepted, by its `iat`, in seconds (Google's push tokens live one hour). */
      maxTokenAgeSec: positiveInt().max(3600, { error: 'expected at most 3600 seconds' }).default(3600),
    })
    .optional(),
  azure: z
    .strictObject({
      auth: z.discriminatedUnion(
        'type',
        [
          /** A shared secret in the endpoint URL (`?code=`) or the `x-fleetward-secret` delivery header. */
          z.strictObject({ type: z.literal('secret'), secret: SecretRef }),
          /** Entra ID protected webhook delivery: a bearer token for `audience` from the tenant. */
          z.strictObject({
            type: z.literal('entra'),
            tenantId: z.guid({ error: 'expected a tenant id (uuid)' }),
            audience: nonEmpty('an audience'),
            /** The client the token must be issued to (`azp`/`appid`); default: Event Grid's application id. */
            clientAppId: z.guid({ error: 'expected an application id (uuid)' }).optional(),
            jwksUrl: z.url().optional(),
          }),
        ],
        { error: 'expected type "secret" or "entra"' },
      ),
    })
    .optional(),
});

export const Severity = z.enum(['info', 'low', 'medium', 'high', 'critical']);

export const SlackConfig = z.strictObject({
  /** Webhooks by name; URLs are never written in the config, only where to read them. */
  webhooks: z.record(z.string().regex(/^[a-z0-9-]+$/), SecretRef),
  routes: z
    .array(
      z.strictObject({
        jurisdiction: z.string().optional(),
        minSeverity: Severity.default('info'),
        webhook: nonEmpty('a webhook name'),
      }),
    )
    .default([]),
  /** Findings listed one by one in a digest before "and N more". */
  maxFindings: positiveInt().default(10),
});

export const StateConfig = z.discriminatedUnion(
  'type',
  [
    z.strictObject({ type: z.literal('sqlite'), path: z.string().default('.fleetward/state.db') }),
    z.strictObject({
      type: z.literal('dynamodb'),
      table: nonEmpty('a table name'),
      region: RegionName,
      endpoint: EndpointUrl.optional(),
    }),
  ],
  { error: 'expected type "sqlite" or "dynamodb"' },
);

/** How Fleetward reaches each cluster's Kubernetes API (backups, drills). Tokens are minted per run, never stored. */
export const KubeAccessConfig = z.strictObject({
  /** Kubernetes API calls in flight at once, across clusters. */
  concurrency: positiveInt().default(16),
  /** Per-attempt timeout of one Kubernetes API call, in milliseconds. */
  timeoutMs: positiveInt().default(15_000),
  /** Attempts per call including the first (429, 5xx and timeouts are retried). */
  maxAttempts: positiveInt().default(3),
  /** GKE: a Google OAuth access token (application default credentials / Workload Identity Federation), or a token file. */
  gcp: z
    .discriminatedUnion('auth', [
      z.strictObject({ auth: z.literal('google') }),
      z.strictObject({ auth: z.literal('token-file'), file: nonEmpty('a token file path') }),
    ])
    .default({ auth: 'google' }),
  /** AKS: an Entra ID token for the AKS server application, or the cluster user credentials ARM returns. */
  azure: z
    .discriminatedUnion('auth', [
      z.strictObject({ auth: z.literal('aad') }),
      z.strictObject({ auth: z.literal('cluster-user-credentials') }),
    ])
    .default({ auth: 'aad' }),
  /** Reach a cluster's API through another address (a proxy, bastion or private link) instead of its own endpoint. */
  overrides: z
    .array(
      z.strictObject({
        cluster: nonEmpty('a cluster id'),
        endpoint: EndpointUrl,
        /** PEM file of the CA that signed that endpoint's certificate. */
        caFile: z.string().optional(),
      }),
    )
    .default([]),
});

export const VeleroConfig = z.strictObject({
  /** Namespace Velero runs in on every cluster. */
  namespace: z.string().default('velero'),
  /** Prefix of drill scratch namespaces; always starts with `fw-drill-`. */
  scratchPrefix: z
    .string()
    .regex(/^fw-drill-[a-z0-9-]*$/, { error: 'expected a prefix starting with "fw-drill-"' })
    .default('fw-drill-'),
});

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
    /** Allowed values; any other value is invalid. */
    values: z.array(z.string()).min(1).optional(),
    /** A regular expression every value must match (anchored). */
    pattern: RegexSource.optional(),
    /** Written when the tag is missing; without a default a missing tag is a finding, never invented. */
    default: z.string().optional(),
    /**
     * Lets Fleetward replace a value the cluster already holds under this key: the derived
     * value (for a key in `derived`), or the `default` in place of a value the policy does not
     * allow. Without it such a value is a finding and is never overwritten.
     */
    overwrite: z.boolean().optional(),
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
  );

export const TagPolicy = z.strictObject({
  /** Tags every cluster must carry, by key. */
  required: z.record(z.string().min(1), RequiredTag).default({}),
  /** Keys Fleetward fills from what it knows about the cluster. */
  derived: z.array(z.enum(DERIVED_TAG_KEYS)).default(['jurisdiction', 'region', 'cloud', 'managed-by']),
});

const Threshold = z.strictObject({
  /** Percent of the budgeted amount (e.g. 80). */
  percent: z.number().positive({ error: 'expected a positive percentage' }).max(1000),
  /** Alert on spend so far, or on the spend forecast for the period. */
  spend: z.enum(['actual', 'forecast']),
});

const BudgetCommon = {
  /** Unique among budgets; the cloud-side budget is named `fleetward-<name>`, which marks it as Fleetward's. */
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,48}$/, { error: 'expected a lower-case name of at most 49 characters' }),
  amount: z.number().positive({ error: 'expected a positive amount' }),
  /** ISO 4217; must be the billing currency of the account, billing account or subscription. */
  currency: z.string().regex(/^[A-Z]{3}$/, { error: 'expected an ISO 4217 currency code like "EUR"' }),
  period: z.enum(['monthly', 'quarterly', 'annually']).default('monthly'),
  thresholds: z.array(Threshold).min(1).max(5),
};

const TagFilter = z.strictObject({ key: nonEmpty('a tag key'), values: z.array(z.string()).min(1) });

export const Budget = z.discriminatedUnion(
  'cloud',
  [
    z.strictObject({
      cloud: z.literal('aws'),
      ...BudgetCommon,
      scope: z.strictObject({
        account: z.string().regex(/^\d{12}$/, { error: 'expected a 12-digit AWS account id' }),
        /** A cost-allocation tag filter (`user:<key>`). */
        tagFilter: TagFilter.optional(),
      }),
      notify: z
        .strictObject({
          emails: z.array(z.email()).default([]),
          snsTopicArn: z
            .string()
            .regex(/^arn:aws[a-z-]*:sns:/, { error: 'expected an SNS topic ARN' })
            .optional(),
        })
        .refine((n) => n.emails.length > 0 || n.snsTopicArn !== undefined, {
          error: 'expected emails or an SNS topic',
        }),
    }),
    z.strictObject({
      cloud: z.literal('gcp'),
      ...BudgetCommon,
      scope: z.strictObject({
        billingAccount: z.string().regex(/^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$/, {
          error: 'expected a billing account id like 000000-000000-000000',
        }),
        /** Project ids; none: every project of the billing account. */
        projects: z.array(z.string()).default([]),
        labels: z.record(z.string(), z.array(z.string()).min(1)).default({}),
      }),
      notify: z.strictObject({
        pubsubTopic: z
          .string()
          .regex(/^projects\/[^/]+\/topics\/[^/]+$/, { error: 'expected projects/<p>/topics/<t>' })
          .optional(),
        /** Cloud Monitoring notification channels (`projects/<p>/notificationChannels/<id>`). */
        channels: z.array(z.string()).max(5).default([]),
      }),
    }),
    z.strictObject({
      cloud: z.literal('azure'),
      ...BudgetCommon,
      scope: z.strictObject({
        subscription: z.guid({ error: 'expected a subscription id (uuid)' }),
        resourceGroup: z.string().optional(),
        tagFilter: TagFilter.optional(),
      }),
      notify: z
        .strictObject({
          emails: z.array(z.email()).default([]),
          actionGroups: z.array(z.string()).default([]),
        })
        .refine((n) => n.emails.length > 0 || n.actionGroups.length > 0, {
          error: 'expected emails or action groups',
        }),
    }),
  ],
  { error: 'expected cloud "aws", "gcp" or "azure"' },
);

export const PoliciesConfig = z.strictObject({
  /** Changes one mutating run may apply before it refuses the whole apply. */
  maxChanges: positiveInt().default(25),
  tags: TagPolicy.prefault({}),
  discovery: z
    .strictObject({
      /** Whether discovery calls each kubeconfig context's API for its version. */
      probeKubeconfig: z.boolean().default(true),
    })
    .prefault({}),
});

export const FleetConfig = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    /** Deployment stage; mutating jobs dry-run by default outside `prod`. */
    stage: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .default('dev'),
    clouds: z
      .strictObject({
        aws: AwsConfig.optional(),
        gcp: GcpConfig.optional(),
        azure: AzureConfig.optional(),
        kubeconfig: z.array(KubeconfigSource).optional(),
      })
      .refine((c) => Object.values(c).some((v) => v !== undefined), { error: 'expected at least one cloud' }),
    jurisdictions: z.record(JurisdictionId, Jurisdiction),
    policies: PoliciesConfig.prefault({}),
    kubeAccess: KubeAccessConfig.prefault({}),
    velero: VeleroConfig.prefault({}),
    /** Budgets as desired state: created, updated, and deleted once they leave this list. */
    budgets: z.array(Budget).default([]),
    slack: SlackConfig.optional(),
    state: StateConfig.default({ type: 'sqlite', path: '.fleetward/state.db' }),
    /** How the cloud event endpoints authenticate their senders. */
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
  });

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
