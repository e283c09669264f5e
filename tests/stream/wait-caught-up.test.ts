/**
 * waitCaughtUp must not return while this member's own last commit is still settling, even when
 * the positions it reads back from the warehouse already say "caught up". The sink's put writes
 * the offsets in its transaction, then does its post-commit work (availability, outbox) before
 * it resolves; a rebalance in that window (a broker restart) reads the stored offsets, and a
 * caller that then read the run's stats found them short. No broker: a stub sink whose put is
 * held after its "commit" is made durable, the consumer never joins, so every partition counts as
 * another member's and its position is read from the sink.
 */
import { catalog } from '../../jobs/catalog';
import type { StreamDestination } from '../../jobs/lib/catalog-types';
import { findDestination, findSource } from '../../jobs/lib/catalog-check';
import { StreamConsumer } from '../../jobs/lib/stream/consumer';
import { loadStreamConfig, topicFor } from '../../jobs/lib/stream/config';
import type { CommitScheduler } from '../../jobs/lib/stream/scheduler';
import type { PutResult, StreamSink } from '../../jobs/lib/stream/sink';
import type { DecodedSlice } from '../../jobs/lib/stream/slices';
import { tpKey } from '../../jobs/lib/stream/group';
import type { StreamOffset } from '../../jobs/lib/warehouse/types';
import { waitFor } from './helpers';

const CARTS = findDestination(catalog, 'fact_carts_has_products') as StreamDestination;

it('waits for the commit in hand to settle before saying caught up', async () => {
  const cfg = loadStreamConfig({}, { topicPrefix: 'waitcaughtup' });
  const source = findSource(catalog, CARTS.sources[0]);
  const topic = topicFor(cfg, source.name);
  const events = 7;
  const stored: StreamOffset[] = [];
  let release!: () => void;
  const sink: StreamSink = {
    location: 'stub',
    groupCommit: true,
    scalesOut: false,
    standby: false,
    decode: () => {
      throw new Error('not fetched here');
    },
    claim: async () => undefined,
    start: async () => undefined,
    open: async () => stored,
    // The commit is durable at once (its offset is what open() reads back); the put resolves
    // only when the test releases it, as the post-commit work would.
    put: async (slices) => {
      stored.push({ topic, partition: 0, offset: String(events) });
      await new Promise<void>((r) => (release = r));
      const results: PutResult[] = slices.map((s) => ({ rows: s.offsets.length, quarantined: 0, timestamps: [...s.timestamps] }));
      return { results, commitMs: 1 };
    },
    flush: async () => undefined,
    stop: async () => undefined,
  };
  const consumer = new StreamConsumer({ catalog, cfg, tables: [CARTS], sink: () => sink });
  const scheduler = (consumer as unknown as { scheduler: CommitScheduler }).scheduler;
  // Counts the loop's looks at `busy`: it looks only once the positions say caught up.
  let busyLooks = 0;
  const busy = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(scheduler), 'busy')!.get!;
  Object.defineProperty(scheduler, 'busy', { get: () => (busyLooks++, busy.call(scheduler)) });

  const slice: DecodedSlice<unknown> = {
    topic,
    partition: 0,
    dest: CARTS,
    source,
    offsets: Array.from({ length: events }, (_, i) => String(i)),
    timestamps: new Float64Array(events).fill(Date.now()),
    fetchedAt: Date.now(),
    lines: Array.from({ length: events }, () => '{}').join('\n'),
  };
  await scheduler.submit(slice);
  await waitFor(() => stored.length === 1, 20_000, 'the stub commit');

  let returned = false;
  const waiting = consumer.waitCaughtUp(new Map([[tpKey(topic, 0), BigInt(events)]]), 60_000).then(() => (returned = true));
  // The precondition, made: the position read back from the sink says caught up, and the loop
  // has looked at it twice while the put is still in hand.
  await waitFor(() => returned || busyLooks >= 2, 20_000, 'the wait to see the stored position');
  expect(consumer.positions.get(tpKey(topic, 0))).toBe(BigInt(events));
  expect(returned).toBe(false);
  expect(consumer.stats[CARTS.name].rows).toBe(0);

  release();
  await waiting;
  expect(consumer.stats[CARTS.name]).toMatchObject({ rows: events, quarantined: 0, batches: 1 });
});
