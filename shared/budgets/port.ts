/**
 * Budgets as desired state: the port every cloud's budget adapter implements, and the
 * cloud-neutral shape budgets are compared in.
 *
 * Ownership: Fleetward manages exactly the budgets whose cloud-side name (AWS `BudgetName`,
 * GCP `displayName`, Azure budget name) is `fleetward-<name>`. Adapters list only those;
 * every other budget is never read into a plan, updated or deleted.
 */
import type { BudgetConfig } from '../config/schema.ts';

/** Prefix of the cloud-side name of every budget Fleetward manages. */
export const MANAGED_PREFIX = 'fleetward-';

/** The clouds budgets exist in. */
export type BudgetCloud = BudgetConfig['cloud'];
export const BUDGET_CLOUDS: readonly BudgetCloud[] = ['aws', 'gcp', 'azure'];

/** The cloud-side name of a configured budget. */
export function managedName(name: string): string {
  return `${MANAGED_PREFIX}${name}`;
}

/** The config name of a cloud-side budget name, or `undefined` when Fleetward does not manage it. */
export function configName(cloudName: string | null | undefined): string | undefined {
  if (!cloudName?.startsWith(MANAGED_PREFIX)) return undefined;
  const name = cloudName.slice(MANAGED_PREFIX.length);
  return name.length > 0 ? name : undefined;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * A Fleetward-managed budget as it exists in a cloud, in the config's shape (name without
 * the `fleetward-` prefix). `currency` is `null` when the cloud does not say (an Azure budget
 * carries no currency; its `currentSpend.unit` is the subscription's billing currency).
 */
export type ActualBudget = DistributiveOmit<BudgetConfig, 'currency'> & {
  currency: string | null;
  /** The provider's id of the budget (AWS `<account>/<name>`, GCP resource name, Azure ARM id). */
  providerId: string;
  /** Optimistic-concurrency token the provider hands back on update (GCP etag, Azure eTag). */
  etag?: string;
  /** Provider data an update or delete needs (AWS notifications as described, Azure time period). */
  native?: unknown;
  /**
   * Every filter the budget has that the config cannot express, as canonical text (AWS
   * `AZ=us-east-1`, Azure `dimensions:ResourceId In <values>`): drift, never ignored. An
   * update rewrites the budget's filter from the config, which removes them.
   */
  filtersNotInConfig?: string[];
  /**
   * What the adapter could not read (e.g. a notification entry that is not a notification):
   * left out of the fields above, and each one a finding on this budget in the plan.
   */
  problems?: string[];
};

/** What names a budget's scope, per cloud (a `BudgetConfig` and an `ActualBudget` are both one). */
export type Scoped =
  | { cloud: 'aws'; scope: { account: string } }
  | { cloud: 'gcp'; scope: { billingAccount: string } }
  | { cloud: 'azure'; scope: { subscription: string; resourceGroup?: string | undefined } };

/**
 * The scope a budget lives in, as one string: AWS account id, GCP billing account id,
 * Azure `<subscription>` or `<subscription>/<resource-group>` (resource group lower-cased).
 */
export function scopeKey(budget: Scoped): string {
  switch (budget.cloud) {
    case 'aws':
      return budget.scope.account;
    case 'gcp':
      return budget.scope.billingAccount;
    case 'azure':
      return budget.scope.resourceGroup
        ? `${budget.scope.subscription.toLowerCase()}/${budget.scope.resourceGroup.toLowerCase()}`
        : budget.scope.subscription.toLowerCase();
  }
}

/** `<cloud>/<scope>/fleetward-<name>`: how plans and results name a budget. */
export function budgetAddress(budget: Scoped & { name: string }): string {
  return `${budget.cloud}/${scopeKey(budget)}/${managedName(budget.name)}`;
}

/** The desired budget of one cloud. */
export type DesiredBudget<C extends BudgetCloud = BudgetCloud> = Extract<BudgetConfig, { cloud: C }>;

/**
 * A budget currency that is not the billing currency of the account, billing account or
 * subscription it would live in. Raised before anything is sent when the adapter knows the
 * billing currency, else turned from the cloud's refusal.
 */
export class BudgetCurrencyError extends Error {
  readonly budget: string;
  readonly currency: string;
  readonly billingCurrency: string;
  constructor(budget: string, currency: string, billingCurrency: string, where: string) {
    super(
      `budget "${budget}" is in ${currency} but ${where} bills in ${billingCurrency}: set currency: ${billingCurrency} (budgets cannot convert currencies)`,
    );
    this.name = 'BudgetCurrencyError';
    this.budget = budget;
    this.currency = currency;
    this.billingCurrency = billingCurrency;
  }
}

/**
 * Reads and writes one cloud's budgets. Calls reject with a `CloudApiError` (or a
 * `BudgetCurrencyError`); adapters retry nothing themselves beyond their SDK's standard
 * retry, and never touch a budget without the `fleetward-` prefix.
 */
export interface BudgetProvider {
  /** The cloud this adapter covers. */
  readonly cloud: BudgetCloud;
  /**
   * Every Fleetward-managed budget that exists in the given scopes (see `scopeKey`: AWS
   * accounts, GCP billing accounts, Azure subscriptions or `<subscription>/<resource-group>`).
   * Only what the cloud holds; one scope failing rejects the whole call.
   */
  list(scopes: readonly string[], options?: { signal?: AbortSignal }): Promise<ActualBudget[]>;
  /** Creates a budget named `fleetward-<name>` with its thresholds and notification targets. */
  create(desired: BudgetConfig, options?: { signal?: AbortSignal }): Promise<void>;
  /** Makes an existing budget (as `list` returned it) match `desired` (same cloud, scope and name). */
  update(desired: BudgetConfig, actual: ActualBudget, options?: { signal?: AbortSignal }): Promise<void>;
  /** Deletes a managed budget (as `list` returned it); one already gone is not an error. */
  delete(actual: ActualBudget, options?: { signal?: AbortSignal }): Promise<void>;
  /** Releases clients and sockets. */
  close(): Promise<void>;
}

/**
 * The budget adapters of a run, one per cloud, built on first use (the wiring builds them
 * through the cloud registry, so a cloud's SDK is loaded only when a run touches its budgets).
 */
export interface BudgetProviders {
  /** The cloud's provider; rejects when the cloud is not configured under `clouds`. */
  get(cloud: BudgetCloud): Promise<BudgetProvider>;
  /** Releases every provider built. */
  close(): Promise<void>;
}
