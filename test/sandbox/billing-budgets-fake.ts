/**
 * A local Cloud Billing Budget API: a gRPC server for
 * `google.cloud.billing.budgets.v1.BudgetService` (`CreateBudget`, `GetBudget`,
 * `UpdateBudget`, `DeleteBudget`, `ListBudgets`) built from the protos that ship with
 * `@google-cloud/billing-budgets`, so the real `BudgetServiceClient` talks to it unchanged
 * (plain-text gRPC on loopback, no credentials).
 *
 * Behaviour follows the v1 reference:
 * - budgets are named `billingAccounts/{billingAccountId}/budgets/{uuid}`; `name` and
 *   `etag` are output-only on create, and the etag changes on every update;
 * - `UpdateBudget` applies `update_mask` paths (snake_case or camelCase, dotted for nested
 *   fields); without a mask it updates the fields that have non-default values in the
 *   request (as the proto documents), and a set `budget.etag` that differs from the current
 *   one fails with ABORTED (AIP-154: etag mismatch → ABORTED, HTTP 409) without changing anything;
 * - `specifiedAmount.currencyCode` must match the billing account's currency (it is filled
 *   in on output when omitted); a different one is INVALID_ARGUMENT;
 * - `ListBudgets` pages with `page_size` (default and maximum 100) and an opaque
 *   `page_token`, and `scope` (`projects/...`) keeps the budgets whose filter names that project;
 * - an unknown billing account or budget is NOT_FOUND.
 *
 * Faults and latency come from the shared {@link FaultInjector}; every request lands in
 * the {@link RequestLog} (cloud `gcp`, operation = RPC name, scope = billing account id).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { protos } from '@google-cloud/billing-budgets';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Fault, FaultInjector, RequestInfo, RequestLog } from './faults.ts';
import { grpcCodeOf, HTTP_OF_GRPC_CODE, retryInfoStatusDetails } from './gke-fake.ts';
import { assertLoopback } from './net.ts';
import { deniedMessage } from './request-log.ts';

/** A budget as the API describes it (the v1 `Budget` message, REST/JSON field names). */
export type Budget = protos.google.cloud.billing.budgets.v1.IBudget;

export interface BillingBudgetsFakeOptions {
  faults?: FaultInjector;
  log?: RequestLog;
  /**
   * Billing accounts that exist, by id (`012345-6789AB-CDEF01`; a `billingAccounts/` prefix
   * is accepted) with their currency. Default: {@link DEFAULT_BILLING_ACCOUNT} in USD.
   */
  billingAccounts?: Record<string, { currencyCode: string }>;
}

export interface BillingBudgetsFake {
  /** `127.0.0.1:<port>`, for a client with insecure channel credentials. */
  endpoint: string;
  /** The budgets of a billing account (id or `billingAccounts/<id>`), in creation order; copies. */
  budgets(billingAccount: string): Budget[];
  /** Ends every call still in flight (injected timeouts included) and closes the server. */
  stop(): Promise<void>;
}

/** The billing account the fake knows when none are given (placeholder id, USD). */
export const DEFAULT_BILLING_ACCOUNT = '000000-000000-000000';

const BUDGET_SERVICE_PROTO = 'google/cloud/billing/budgets/v1/budget_service.proto';
const MAX_PAGE_SIZE = 100;
const MAX_DISPLAY_NAME = 60;
const MAX_MONITORING_CHANNELS = 5;

/** Include dirs: the billing-budgets package's protos, then google-gax's (google/api, google/type). */
function protoIncludeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const budgetsMain = require.resolve('@google-cloud/billing-budgets');
  const gaxMain = createRequire(budgetsMain).resolve('google-gax');
  return [join(dirname(budgetsMain), '..', 'protos'), join(dirname(gaxMain), '..', 'protos')];
}

let serviceDefinition: grpc.ServiceDefinition | undefined;

function budgetService(): grpc.ServiceDefinition {
  if (serviceDefinition) return serviceDefinition;
  const definition = protoLoader.loadSync(BUDGET_SERVICE_PROTO, {
    includeDirs: protoIncludeDirs(),
    keepCase: false,
    longs: String,
    enums: String,
    defaults: false,
    // No virtual oneof-name fields: stored budgets hold only real fields.
    oneofs: false,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    google: {
      cloud: { billing: { budgets: { v1: { BudgetService: grpc.ServiceClientConstructor } } } };
    };
  };
  serviceDefinition = loaded.google.cloud.billing.budgets.v1.BudgetService.service;
  return serviceDefinition;
}

// --- names ---

const ACCOUNT_NAME = /^billingAccounts\/([^/]+)$/;
const BUDGET_NAME = /^billingAccounts\/([^/]+)\/budgets\/([^/]+)$/;

function accountId(account: string): string {
  return ACCOUNT_NAME.exec(account)?.[1] ?? account;
}

type ApiError = { code: grpc.status; message: string };
type AnswerResult = { response: Record<string, unknown> } | { error: ApiError };

const invalid = (message: string): { error: ApiError } => ({
  error: { code: grpc.status.INVALID_ARGUMENT, message },
});

// --- update masks ---

/** Fields of `Budget` a mask may name (top level); `name` is output-only. */
const UPDATABLE = new Set(['displayName', 'budgetFilter', 'amount', 'thresholdRules', 'notificationsRule']);

/** The other member of each oneof, by field: setting one clears the other. */
const ONEOF_PARTNER: Record<string, string> = {
  calendarPeriod: 'customPeriod',
  customPeriod: 'calendarPeriod',
  specifiedAmount: 'lastPeriodAmount',
  lastPeriodAmount: 'specifiedAmount',
};

function camel(segment: string): string {
  return segment.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

type Obj = Record<string, unknown>;

function isObj(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Copies the field at `path` from `source` onto `target` (deleting it where the source has none). */
function applyPath(target: Obj, source: Obj, path: string[]): void {
  const [head, ...rest] = path as [string, ...string[]];
  if (rest.length === 0) {
    if (source[head] === undefined) delete target[head];
    else {
      target[head] = structuredClone(source[head]);
      const partner = ONEOF_PARTNER[head];
      if (partner) delete target[partner];
    }
    return;
  }
  const nextSource = isObj(source[head]) ? (source[head] as Obj) : {};
  if (!isObj(target[head])) target[head] = {};
  applyPath(target[head] as Obj, nextSource, rest);
}

/** Whether a field holds a non-default value (proto3: empty string/list/map, 0, false are defaults). */
function isSet(value: unknown): boolean {
  if (value === undefined || value === null || value === '' || value === 0 || value === false) return false;
  if (Array.isArray(value)) return value.length > 0;
  return true;
}

// --- validation ---

function validateBudget(budget: Obj, currency: string): ApiError | undefined {
  const displayName = budget.displayName as string | undefined;
  if (displayName && [...displayName].length > MAX_DISPLAY_NAME) {
    return {
      code: grpc.status.INVALID_ARGUMENT,
      message: `budget.display_name must be at most ${MAX_DISPLAY_NAME} characters.`,
    };
  }
  const amount = budget.amount as Obj | undefined;
  if (!amount || (!amount.specifiedAmount && !amount.lastPeriodAmount)) {
    return {
      code: grpc.status.INVALID_ARGUMENT,
      message: 'budget.amount is required: set specified_amount or last_period_amount.',
    };
  }
  const money = amount.specifiedAmount as Obj | undefined;
  if (money) {
    const code = (money.currencyCode as string | undefined) ?? '';
    if (code && code !== currency) {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        message:
          `budget.amount.specified_amount.currency_code "${code}" does not match the billing account's ` +
          `currency "${currency}"; omit it or use "${currency}".`,
      };
    }
    // Output carries the currency even when the request left it out.
    money.currencyCode = currency;
  }
  for (const [i, rule] of ((budget.thresholdRules as Obj[] | undefined) ?? []).entries()) {
    const percent = Number(rule.thresholdPercent ?? 0);
    if (!(percent > 0)) {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        message: `budget.threshold_rules[${i}].threshold_percent must be greater than 0.`,
      };
    }
  }
  const filter = budget.budgetFilter as Obj | undefined;
  if (filter?.calendarPeriod && filter.customPeriod) {
    return {
      code: grpc.status.INVALID_ARGUMENT,
      message: 'budget.budget_filter: set only one of calendar_period and custom_period.',
    };
  }
  const rule = budget.notificationsRule as Obj | undefined;
  if (rule) {
    const schema = (rule.schemaVersion as string | undefined) ?? '';
    if (schema && schema !== '1.0') {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        message: `budget.notifications_rule.schema_version "${schema}" is not supported; only "1.0" is accepted.`,
      };
    }
    if (rule.pubsubTopic && !schema) {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        message: 'budget.notifications_rule.schema_version is required when pubsub_topic is set.',
      };
    }
    const channels = (rule.monitoringNotificationChannels as string[] | undefined) ?? [];
    if (channels.length > MAX_MONITORING_CHANNELS) {
      return {
        code: grpc.status.INVALID_ARGUMENT,
        message: `budget.notifications_rule.monitoring_notification_channels allows at most ${MAX_MONITORING_CHANNELS} channels.`,
      };
    }
  }
  return undefined;
}

// --- page tokens ---

function pageToken(offset: number): string {
  return Buffer.from(`offset:${offset}`).toString('base64url');
}

function parsePageToken(token: string): number | undefined {
  const m = /^offset:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : undefined;
}

// --- the server ---

type Handler = grpc.handleUnaryCall<Obj, Obj>;
type Operation = 'CreateBudget' | 'GetBudget' | 'UpdateBudget' | 'DeleteBudget' | 'ListBudgets';

/** The billing account a request is about, for the log and fault rules. */
function scopeOf(operation: Operation, request: Obj): string | undefined {
  const name =
    operation === 'CreateBudget' || operation === 'ListBudgets'
      ? (request.parent as string | undefined)
      : operation === 'UpdateBudget'
        ? ((request.budget as Obj | undefined)?.name as string | undefined)
        : (request.name as string | undefined);
  if (!name) return undefined;
  return ACCOUNT_NAME.exec(name)?.[1] ?? BUDGET_NAME.exec(name)?.[1];
}

export async function startBillingBudgetsFake(
  options: BillingBudgetsFakeOptions = {},
): Promise<BillingBudgetsFake> {
  const { faults, log } = options;
  const accounts = new Map<string, { currencyCode: string; budgets: Map<string, Obj> }>();
  for (const [id, { currencyCode }] of Object.entries(
    options.billingAccounts ?? { [DEFAULT_BILLING_ACCOUNT]: { currencyCode: 'USD' } },
  )) {
    accounts.set(accountId(id), { currencyCode, budgets: new Map() });
  }
  const stopping = new AbortController();
  const hanging = new Set<grpc.sendUnaryData<Obj>>();
  let revision = 0;

  const newEtag = (budget: Obj): string =>
    createHash('sha256')
      .update(`${++revision}/${JSON.stringify(budget)}`)
      .digest('hex')
      .slice(0, 16);

  /** Runs one call: latency, fault, then the normal answer; records it in the log. */
  const serve =
    (operation: Operation, answer: (request: Obj) => AnswerResult): Handler =>
    (call, callback) => {
      const started = performance.now();
      const request = call.request;
      const info: RequestInfo = { cloud: 'gcp', operation, at: Date.now() };
      const scope = scopeOf(operation, request);
      if (scope) info.scope = scope;
      const finish = (status: number, fault?: Fault['kind']) => {
        const entry: RequestInfo = { ...info, durationMs: performance.now() - started, status };
        if (fault) entry.fault = fault;
        log?.record(entry);
      };
      const fail = (code: grpc.status, message: string, fault?: Fault['kind'], metadata?: grpc.Metadata) => {
        finish(HTTP_OF_GRPC_CODE[code] ?? 500, fault);
        const error: Partial<grpc.StatusObject> = { code, details: message };
        if (metadata) error.metadata = metadata;
        callback(error);
      };
      void (async () => {
        await faults?.delay(stopping.signal);
        if (stopping.signal.aborted) return fail(grpc.status.UNAVAILABLE, 'server is shutting down');
        const fault = faults?.take(info);
        if (fault?.kind === 'timeout') {
          hanging.add(callback);
          log?.record({ ...info, fault: 'timeout' });
          return;
        }
        if (fault?.kind === 'throttle') {
          const message = `Quota exceeded for quota metric "${operation.startsWith('Get') || operation.startsWith('List') ? 'Read' : 'Write'} requests" of service billingbudgets.googleapis.com.`;
          const code = grpc.status.RESOURCE_EXHAUSTED;
          const metadata = new grpc.Metadata();
          if (fault.retryAfterSeconds !== undefined) {
            metadata.set(
              'grpc-status-details-bin',
              retryInfoStatusDetails(code, message, fault.retryAfterSeconds),
            );
          }
          return fail(code, message, 'throttle', metadata);
        }
        if (fault?.kind === 'error') {
          return fail(grpcCodeOf(fault.status), `injected error (HTTP ${fault.status})`, 'error');
        }
        if (fault?.kind === 'deny') return fail(grpc.status.PERMISSION_DENIED, deniedMessage(info), 'deny');
        const result = answer(request);
        if ('error' in result) return fail(result.error.code, result.error.message);
        let response = result.response;
        if (fault?.kind === 'malformed') {
          response = 'budgets' in response ? { ...response, budgets: [{ amount: {} }] } : { amount: {} };
        }
        finish(200, fault?.kind);
        callback(null, response);
      })();
    };

  const accountOf = (
    parent: unknown,
  ): { id: string; account: NonNullable<ReturnType<typeof accounts.get>> } | { error: ApiError } => {
    const m = typeof parent === 'string' ? ACCOUNT_NAME.exec(parent) : null;
    if (!m)
      return invalid(
        `parent must be of the form billingAccounts/{billingAccountId}, got "${String(parent ?? '')}".`,
      );
    const account = accounts.get(m[1]!);
    if (!account) {
      return { error: { code: grpc.status.NOT_FOUND, message: `Billing account ${parent} not found.` } };
    }
    return { id: m[1]!, account };
  };

  const budgetOf = (
    name: unknown,
  ):
    | { account: { currencyCode: string; budgets: Map<string, Obj> }; id: string; budget: Obj }
    | { error: ApiError } => {
    const m = typeof name === 'string' ? BUDGET_NAME.exec(name) : null;
    if (!m) {
      return invalid(
        `name must be of the form billingAccounts/{billingAccountId}/budgets/{budgetId}, got "${String(name ?? '')}".`,
      );
    }
    const account = accounts.get(m[1]!);
    if (!account) {
      return {
        error: { code: grpc.status.NOT_FOUND, message: `Billing account billingAccounts/${m[1]} not found.` },
      };
    }
    const budget = account.budgets.get(m[2]!);
    if (!budget) return { error: { code: grpc.status.NOT_FOUND, message: `Budget ${name} not found.` } };
    return { account, id: m[2]!, budget };
  };

  const createBudget = serve('CreateBudget', (request) => {
    const found = accountOf(request.parent);
    if ('error' in found) return found;
    if (!isObj(request.budget)) return invalid('budget is required.');
    const budget = structuredClone(request.budget);
    delete budget.name;
    delete budget.etag;
    const problem = validateBudget(budget, found.account.currencyCode);
    if (problem) return { error: problem };
    const id = randomUUID();
    const stored: Obj = { name: `billingAccounts/${found.id}/budgets/${id}`, ...budget };
    stored.etag = newEtag(stored);
    found.account.budgets.set(id, stored);
    return { response: structuredClone(stored) };
  });

  const getBudget = serve('GetBudget', (request) => {
    const found = budgetOf(request.name);
    if ('error' in found) return found;
    return { response: structuredClone(found.budget) };
  });

  const updateBudget = serve('UpdateBudget', (request) => {
    if (!isObj(request.budget)) return invalid('budget is required.');
    const input = request.budget;
    const found = budgetOf(input.name);
    if ('error' in found) return found;
    const etag = (input.etag as string | undefined) ?? '';
    if (etag && etag !== found.budget.etag) {
      return {
        error: {
          code: grpc.status.ABORTED,
          message:
            `The budget ${String(input.name)} was modified since it was read: etag "${etag}" does not match ` +
            `the current etag "${String(found.budget.etag)}". Read the budget again and retry.`,
        },
      };
    }
    const mask = isObj(request.updateMask) ? ((request.updateMask.paths as string[] | undefined) ?? []) : [];
    const updated = structuredClone(found.budget);
    if (mask.length > 0) {
      for (const raw of mask) {
        const path = raw.split('.').map(camel);
        if (path[0] === 'etag') continue;
        if (path[0] === 'name') return invalid('update_mask: name is output-only and cannot be updated.');
        if (!UPDATABLE.has(path[0]!) || path.some((segment) => segment === '')) {
          return invalid(
            `update_mask: unknown field path "${raw}" for google.cloud.billing.budgets.v1.Budget.`,
          );
        }
        applyPath(updated, input, path);
      }
    } else {
      // No mask: only the fields with non-default values in the request are updated.
      for (const field of UPDATABLE) {
        if (isSet(input[field])) applyPath(updated, input, [field]);
      }
    }
    const problem = validateBudget(updated, found.account.currencyCode);
    if (problem) return { error: problem };
    updated.etag = newEtag(updated);
    found.account.budgets.set(found.id, updated);
    return { response: structuredClone(updated) };
  });

  const deleteBudget = serve('DeleteBudget', (request) => {
    const found = budgetOf(request.name);
    if ('error' in found) return found;
    found.account.budgets.delete(found.id);
    return { response: {} };
  });

  const listBudgets = serve('ListBudgets', (request) => {
    const found = accountOf(request.parent);
    if ('error' in found) return found;
    const pageSize = Number(request.pageSize ?? 0);
    if (!Number.isInteger(pageSize) || pageSize < 0) return invalid('page_size must not be negative.');
    const size = pageSize === 0 ? MAX_PAGE_SIZE : Math.min(pageSize, MAX_PAGE_SIZE);
    const token = (request.pageToken as string | undefined) ?? '';
    const offset = token ? parsePageToken(token) : 0;
    if (offset === undefined) return invalid(`Invalid page_token "${token}".`);
    const scope = (request.scope as string | undefined) ?? '';
    if (scope && !/^projects\/[^/]+$/.test(scope)) {
      return invalid(
        `scope must be a project, "projects/{project_id}" or "projects/{project_number}", got "${scope}".`,
      );
    }
    const all = [...found.account.budgets.values()].filter(
      (b) =>
        !scope || ((b.budgetFilter as Obj | undefined)?.projects as string[] | undefined)?.includes(scope),
    );
    const page = all.slice(offset, offset + size);
    const response: Obj = { budgets: structuredClone(page) };
    if (offset + size < all.length) response.nextPageToken = pageToken(offset + size);
    return { response };
  });

  const server = new grpc.Server();
  server.addService(budgetService(), {
    CreateBudget: createBudget,
    GetBudget: getBudget,
    UpdateBudget: updateBudget,
    DeleteBudget: deleteBudget,
    ListBudgets: listBudgets,
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  const endpoint = `127.0.0.1:${port}`;
  assertLoopback(endpoint);

  return {
    endpoint,
    budgets(billingAccount) {
      const account = accounts.get(accountId(billingAccount));
      return account ? [...account.budgets.values()].map((b) => structuredClone(b) as Budget) : [];
    },
    async stop() {
      stopping.abort();
      for (const callback of hanging) callback({ code: grpc.status.UNAVAILABLE, details: 'server stopped' });
      hanging.clear();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
