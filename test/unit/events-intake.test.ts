/**
 * The event intake (what an endpoint runs after verifying a request): each event of a watched
 * scope is recorded once and handed on as one ids-only `rediscover-clusters` item; a
 * redelivery sends nothing again unless the first hand-over failed; unwatched scopes are
 * acknowledged and never sent. And the worker side reads the event back by the item's id.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../shared/config/load.ts';
import type { FleetConfig } from '../../shared/config/schema.ts';
import {
  acceptEvents,
  CLUSTER_EVENTS_NS,
  eventKeyOf,
  type IntakeDeps,
  type ReceivedEvent,
  receiveEvents,
} from '../../shared/events/intake.ts';
import type { ClusterEvent } from '../../shared/events/model.ts';
import { type OpenedEventDeps, rediscoverWork } from '../../shared/jobs/cluster-event.ts';
import { parseWorkItem, type WorkItem } from '../../shared/runtime/dispatch.ts';
import { silentLogger } from '../../shared/runtime/logger.ts';
import { SqliteStateStore } from '../../shared/state/sqlite.ts';

const config: FleetConfig = parseConfig({
  version: 1,
  clouds: {
    aws: {
      accounts: [
        {
          id: '111122223333',
          roleArn: 'arn:aws:iam::111122223333:role/fleetward-reader',
          regions: ['eu-west-1'],
        },
      ],
    },
    gcp: { projects: [{ id: 'payments-prod-eu' }] },
  },
  jurisdictions: { eu: { preset: 'eu-gdpr' } },
});

/** A normalised event builder; each call a fresh id unless given. */
function event(overrides: Partial<ClusterEvent> = {}): ClusterEvent {
  return {
    id: crypto.randomUUID(),
    source: 'aws',
    type: 'updated',
    providerType: 'TagResource',
    cluster: { cloud: 'aws', scope: '111122223333', region: 'eu-west-1', name: 'payments' },
    occurredAt: '2026-12-07T10:00:00Z',
    detail: { tagKeys: ['owner'] },
    ...overrides,
  };
}

describe('event intake', () => {
  let store: SqliteStateStore;
  let sent: WorkItem[][];
  let failSend: boolean;
  let deps: IntakeDeps;

  beforeEach(() => {
    store = new SqliteStateStore({ path: ':memory:' });
    sent = [];
    failSend = false;
    deps = {
      config,
      store,
      logger: silentLogger,
      send: async (items) => {
        if (failSend) throw new Error('queue unavailable');
        sent.push([...items]);
      },
    };
  });
  afterEach(async () => {
    await store.close();
  });

  it('records each event once and sends one ids-only item per event', async () => {
    // Prepare
    const a = event();
    const b = event({
      source: 'gcp',
      providerType: 'UpgradeAvailableEvent',
      cluster: { cloud: 'gcp', scope: '880000000001', region: 'europe-west3', name: 'checkout' },
    });

    // Act
    const result = await acceptEvents(deps, [a, b]);

    // Assess
    expect(result).toEqual({ accepted: 2, replayed: 0, ignored: 0 });
    expect(sent.flat()).toEqual([
      { job: 'rediscover-clusters', clusterId: 'aws/111122223333/eu-west-1/payments', runId: eventKeyOf(a) },
      {
        job: 'rediscover-clusters',
        clusterId: 'gcp/880000000001/europe-west3/checkout',
        runId: eventKeyOf(b),
      },
    ]);
    // The item is a strict work item: nothing of the event rides along but its ids.
    for (const item of sent.flat()) expect(parseWorkItem(JSON.stringify(item))).toEqual(item);
    const held = await store.get<ReceivedEvent>(CLUSTER_EVENTS_NS, eventKeyOf(a));
    expect(held?.event).toEqual(a);
    expect(held?.enqueuedAt).toBeDefined();
  });

  it('sends nothing again for a redelivery and counts it as replayed', async () => {
    // Prepare
    const a = event();
    await acceptEvents(deps, [a]);

    // Act
    const again = await acceptEvents(deps, [a, a]);

    // Assess
    expect(again).toEqual({ accepted: 0, replayed: 2, ignored: 0 });
    expect(sent).toHaveLength(1);
  });

  it('sends again when the first hand-over failed, so a failed send never loses the event', async () => {
    // Prepare
    const a = event();
    failSend = true;
    await expect(acceptEvents(deps, [a])).rejects.toThrow('queue unavailable');
    failSend = false;

    // Act
    const retried = await acceptEvents(deps, [a]);

    // Assess
    expect(retried).toEqual({ accepted: 1, replayed: 0, ignored: 0 });
    expect(sent.flat().map((i) => i.runId)).toEqual([eventKeyOf(a)]);
  });

  it.each([
    ['an account not configured', { cloud: 'aws', scope: '999999999999', region: 'eu-west-1', name: 'x' }],
    [
      'a project id not configured',
      { cloud: 'gcp', scope: 'not-our-project', region: 'europe-west3', name: 'x' },
    ],
    [
      'a cloud not configured',
      {
        cloud: 'azure',
        scope: '11111111-2222-3333-4444-555555555555',
        region: '',
        name: 'x',
        resourceGroup: 'rg',
      },
    ],
  ] as const)('acknowledges an event about %s without recording or sending it', async (_label, cluster) => {
    // Act
    const result = await acceptEvents(deps, [event({ cluster: { ...cluster } })]);

    // Assess
    expect(result).toEqual({ accepted: 0, replayed: 0, ignored: 1 });
    expect(sent).toEqual([]);
    expect(await store.list(CLUSTER_EVENTS_NS)).toEqual([]);
  });

  it('opens no intake for an empty batch', async () => {
    // Act
    const result = await receiveEvents([], {
      config,
      logger: silentLogger,
      open: async () => {
        throw new Error('must not open');
      },
    });

    // Assess
    expect(result).toEqual({ accepted: 0, replayed: 0, ignored: 0 });
  });
});

describe('rediscover-clusters work', () => {
  it('ignores an item whose event record is gone, without a cloud call', async () => {
    // Prepare: deps whose cloud side fails loudly if touched
    const store = new SqliteStateStore({ path: ':memory:' });
    const deps = {
      config,
      store,
      logger: silentLogger,
      discoveries: [],
      get notifier(): never {
        throw new Error('no slack for an unknown item');
      },
    } as unknown as OpenedEventDeps;

    // Act
    const result = await rediscoverWork.run(deps, {
      job: 'rediscover-clusters',
      clusterId: 'aws/111122223333/eu-west-1/payments',
      runId: 'ev-0000',
    });
    await store.close();

    // Assess
    expect(result).toMatchObject({ status: 'ignored', reason: expect.stringContaining('not found') });
  });

  it('reads the recorded event back and takes it down the event path', async () => {
    // Prepare: an event recorded by the intake, an AWS discovery that says the cluster is gone
    const store = new SqliteStateStore({ path: ':memory:' });
    const a = event();
    const items: WorkItem[] = [];
    await acceptEvents({ config, store, logger: silentLogger, send: async (i) => void items.push(...i) }, [
      a,
    ]);
    const described: unknown[] = [];
    const deps = {
      config,
      store,
      logger: silentLogger,
      residency: undefined,
      clock: { now: () => new Date() },
      discoveries: [
        {
          cloud: 'aws',
          list: async () => ({ clusters: [], failures: [] }),
          describe: async (ref: unknown) => {
            described.push(ref);
            return null;
          },
        },
      ],
      notifier: { notify: async () => ({ sent: 1 }) },
    } as unknown as OpenedEventDeps;

    // Act
    const result = await rediscoverWork.run(deps, items[0]!);
    await store.close();

    // Assess
    expect(described).toEqual([{ scope: '111122223333', region: 'eu-west-1', name: 'payments' }]);
    expect(result).toMatchObject({
      status: 'handled',
      result: {
        eventId: a.id,
        clusterId: 'aws/111122223333/eu-west-1/payments',
        outcome: 'absent',
        notified: 1,
      },
    });
  });
});
