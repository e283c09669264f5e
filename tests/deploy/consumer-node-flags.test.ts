/**
 * Every way a stream consumer process is started passes the consumer's Node flags
 * (CONSUMER_NODE_FLAGS): the stream image's ENTRYPOINT, `npm run consume`, and `npm run
 * bench:stream` (the consumer runs inside the benchmark's process, so its figures are the
 * consumer's only with the same flags). V8 reads them at start-up only: a launcher that drops
 * them runs a slower consumer without a word.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CONSUMER_NODE_FLAGS } from '../../jobs/lib/stream/config';
import { environmentOf, type Service } from './compose-config';
import { ROOT } from './env-refs';

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), 'utf8');

/** The arguments `node` gets before the script in an npm script's last command. */
function nodeArgsOfScript(name: string): string[] {
  const line = JSON.parse(read('package.json')).scripts[name] as string;
  const node = line.split('&&').map((c) => c.trim()).find((c) => c.startsWith('node '));
  if (!node) throw new Error(`npm script ${name} runs no node command: ${line}`);
  const words = node.split(/\s+/).slice(1);
  const script = words.findIndex((w) => !w.startsWith('-'));
  return script === -1 ? words : words.slice(0, script);
}

describe('the consumer is started with its Node flags everywhere', () => {
  test('the flags are V8 options, each given once', () => {
    expect(CONSUMER_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(new Set(CONSUMER_NODE_FLAGS).size).toBe(CONSUMER_NODE_FLAGS.length);
    for (const f of CONSUMER_NODE_FLAGS) expect(f).toMatch(/^--[a-z-]+=\d+$/);
  });

  test('the stream image: ENTRYPOINT is node with exactly these flags', () => {
    const entry = read('docker/stream.Dockerfile').split('\n').filter((l) => l.startsWith('ENTRYPOINT '));
    expect(entry).toHaveLength(1);
    expect(JSON.parse(entry[0].slice('ENTRYPOINT '.length))).toEqual(['node', ...CONSUMER_NODE_FLAGS]);
  });

  test.each(['consume', 'bench:stream'])('npm run %s passes exactly these flags to node', (name) => {
    expect(nodeArgsOfScript(name)).toEqual([...CONSUMER_NODE_FLAGS]);
  });

  test('compose runs the stream image through its ENTRYPOINT (no entrypoint or NODE_OPTIONS of its own)', () => {
    // Merge keys resolved: the services as compose sees them, the producer's profile included.
    const services = (parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> }).services;
    expect(services['stream-consumer'].command[0]).toBe('dist/jobs/stream-consumer.js');
    for (const name of ['stream-consumer', 'producer']) {
      expect(services[name].image).toBe('store-etl/stream:latest');
      expect(services[name].entrypoint).toBeUndefined();
      expect(environmentOf(services[name])).not.toHaveProperty('NODE_OPTIONS');
    }
  });
});
