/**
 * The Kafka client's floor, for `bench:stream`: kafkajs (this project's client, with its patch)
 * reading the same topics with the consumer's fetch settings (jobs/lib/stream/group.ts) and doing
 * nothing with the records but decoding each value to text, which every consumer must do. A
 * consumer built on kafkajs pays at least this per event, before checking, keying or writing
 * anything: client floor / perf tool bounds the consumer's ratio from above, as the sink floor
 * does for DuckDB.
 */
import type { StreamConfig } from '../jobs/lib/stream/config';
import { fetchSettings } from '../jobs/lib/stream/group';
import type { createKafka } from '../jobs/lib/stream/kafka';

export interface ClientFloor {
  /** From the group join to the last of `events` decoded. */
  readonly seconds: number;
  /** CPU of this process over that span, per event (the fetch's and the decoding's). */
  readonly cpuUsPerEvent: number;
}

export async function clientFloor(
  kafka: ReturnType<typeof createKafka>,
  cfg: StreamConfig,
  topics: readonly string[],
  events: number,
): Promise<ClientFloor> {
  const consumer = kafka.consumer({ groupId: `${cfg.group}-client-floor`, ...fetchSettings(cfg) });
  let joinedAt = 0n;
  let cpu0 = process.cpuUsage();
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinedAt = process.hrtime.bigint();
    cpu0 = process.cpuUsage();
  });
  let seen = 0;
  let bytes = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...topics], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 32,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) bytes += m.value ? m.value.toString('utf8').length : 0;
        seen += batch.messages.length;
        if (seen >= events) done();
      },
    });
    // Bounded: a topic holding fewer events than asked would otherwise wait for ever.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`client floor: ${seen} of ${events} events after 300 s`)), 300_000);
    });
    await Promise.race([all, timeout]).finally(() => clearTimeout(timer));
    const seconds = Number(process.hrtime.bigint() - joinedAt) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (bytes === 0) throw new Error('client floor: no value decoded');
    return { seconds, cpuUsPerEvent: Number(((cpu.user + cpu.system) / events).toFixed(2)) };
  } finally {
    await consumer.disconnect();
  }
}
