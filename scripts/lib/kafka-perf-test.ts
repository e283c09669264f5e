/** Kafka's own kafka-consumer-perf-test (scripts/kafka/consumer-perf-test.sh): the stream benchmark's ceiling. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../jobs/lib/stream/broker';
import type { StreamConfig } from '../../jobs/lib/stream/config';

/** kafka-consumer-perf-test on one topic: its CSV line as a record. */
export function perfTest(cfg: StreamConfig, topic: string, messages: number, run: number): Promise<Record<string, string>> {
  const script = path.join(repoRoot(), 'scripts/kafka/consumer-perf-test.sh');
  const args = [script, '--bootstrap-server', cfg.brokers.join(','), '--topic', topic, '--messages', String(messages),
    '--group', `perf-${topic}-${run}`, '--timeout', '30000'];
  return new Promise((resolve, reject) => {
    execFile('bash', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`kafka-consumer-perf-test failed: ${stderr || err.message}`));
      const lines = stdout.trim().split('\n').filter((l) => l.includes(','));
      const header = lines[0].split(',').map((s) => s.trim());
      const values = lines[lines.length - 1].split(',').map((s) => s.trim());
      resolve(Object.fromEntries(header.map((h, i) => [h, values[i]])));
    });
  });
}
