/**
 * The one config spec (jobs/lib/config/spec.ts): one rule for empty values, the same files for
 * every layer, typed errors, and the config command the shell scripts and DAGs ask.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../../jobs/lib/config';
import { settingsOf } from '../../jobs/lib/config/settings';
import { SPEC } from '../../jobs/lib/config/spec';
import { loadStreamConfig } from '../../jobs/lib/stream/config';
import { warehousePath } from '../../scripts/dbt-run';
import { profileSettings } from '../../scripts/dbt-profiles';
import { runNode, tempDir } from '../helpers/env';

const CWD = process.cwd();

/** The batch DuckDB file as each layer resolves it. */
const batchFileOf = (env: Record<string, string>) => ({
  jobs: loadConfig(env).duckdbPath,
  stream: loadStreamConfig(env).batchDuckdbPath,
  dbtProfile: profileSettings(env, CWD).duckdbPath,
  dbtRun: warehousePath(env, CWD),
});

describe('empty = unset, for every layer', () => {
  test("ETL_STATE_DIR='' puts the batch warehouse at the default in every layer", () => {
    const expected = path.join(CWD, '.state', 'warehouse.duckdb');
    expect(batchFileOf({ ETL_STATE_DIR: '' })).toEqual({ jobs: expected, stream: expected, dbtProfile: expected, dbtRun: expected });
    expect(batchFileOf({ ETL_STATE_DIR: '', DUCKDB_PATH: '' })).toEqual(batchFileOf({}));
  });

  test('ETL_STATE_DIR moves every file derived from it, in every layer', () => {
    const env = { ETL_STATE_DIR: '/srv/st' };
    const expected = '/srv/st/warehouse.duckdb';
    expect(batchFileOf(env)).toEqual({ jobs: expected, stream: expected, dbtProfile: expected, dbtRun: expected });
    const s = settingsOf(env, CWD);
    expect(['STREAM_DUCKDB_PATH', 'STREAM_SNAPSHOT_PATH', 'KAFKA_STATE_DIR', 'AIRFLOW_HOME', 'DBT_PROFILES_DIR'].map((n) => s.path(n))).toEqual([
      '/srv/st/stream.duckdb',
      '/srv/st/stream-snapshot.duckdb',
      '/srv/st/kafka',
      '/srv/st/airflow',
      '/srv/st/dbt',
    ]);
  });

  test('an empty or blank value of any setting resolves like an unset one', () => {
    const unset = settingsOf({}, CWD);
    for (const s of SPEC) {
      for (const blank of ['', '  ']) {
        expect({ name: s.name, value: settingsOf({ [s.name]: blank }, CWD).raw(s.name) }).toEqual({ name: s.name, value: unset.raw(s.name) });
      }
    }
  });
});

describe('the spec', () => {
  test('declares each name once, with a doc and a usable default', () => {
    const names = SPEC.map((s) => s.name);
    expect(names.filter((n, i) => names.indexOf(n) !== i)).toEqual([]);
    for (const s of SPEC) {
      expect({ name: s.name, documented: s.doc.length > 10 && s.usedBy.length > 0 }).toEqual({ name: s.name, documented: true });
      // A declared default must pass its own type's check (a typo in the spec fails here).
      expect(() => settingsOf({}, CWD).raw(s.name)).not.toThrow();
      if (s.secret) expect({ name: s.name, default: s.default, example: s.example }).toEqual({ name: s.name, default: undefined, example: undefined });
    }
  });

  test('typed values and clear errors for bad ones', () => {
    const s = settingsOf({ STREAM_PARTITIONS: '7', WAREHOUSE: 'BigQuery', BOOTSTRAP_SERVER: 'a:1, b:2', DBT_DOCS: 'false' }, CWD);
    expect([s.int('STREAM_PARTITIONS'), s.choice('WAREHOUSE'), s.list('BOOTSTRAP_SERVER'), s.flag('DBT_DOCS')]).toEqual([7, 'bigquery', ['a:1', 'b:2'], false]);
    expect(() => settingsOf({ STREAM_SESSION_TIMEOUT_MS: '5000' }).int('STREAM_SESSION_TIMEOUT_MS')).toThrow("STREAM_SESSION_TIMEOUT_MS must be at least 6000, got '5000'");
    expect(() => settingsOf({ DUCKDB_LOCK_RETRIES: '2.5' }).int('DUCKDB_LOCK_RETRIES')).toThrow('DUCKDB_LOCK_RETRIES must be a whole number');
    expect(() => loadConfig({ BATCH_PATH: 'fast' })).toThrow("BATCH_PATH must be 'bulk' or 'exact', got 'fast'");
    expect(() => loadConfig({ MAX_RECORD_BYTES: '100' })).toThrow("MAX_RECORD_BYTES must be at least 1024, got '100'");
    expect(() => settingsOf({}).raw('NOT_A_SETTING')).toThrow('NOT_A_SETTING is not declared');
  });

  test('STREAM_DUCKDB_THREADS defaults to the cores but one, at least 1', () => {
    const cores = require('node:os').cpus().length as number;
    expect(loadStreamConfig({}).duckdbThreads).toBe(Math.max(1, cores - 1));
  });
});

describe('the config command (dist/scripts/config.js)', () => {
  test('get prints resolved values; empty is unset; paths absolute', () => {
    const dir = tempDir('config-get');
    const r = runNode('scripts/config.js', ['get', 'DUCKDB_PATH', 'KAFKA_STATE_DIR', 'STREAM_PARTITIONS', 'DBT_DOCS'], { ETL_STATE_DIR: dir, STREAM_PARTITIONS: '', DBT_DOCS: 'false' });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual([path.join(dir, 'warehouse.duckdb'), path.join(dir, 'kafka'), '3', '0', '']);
  });

  test('--shell prints export lines that bash evaluates to the same values, quoting included', () => {
    const r = spawnSync('bash', ['-c', 'eval "$(node dist/scripts/config.js --shell KAFKA_HEAP_OPTS TOPIC_GROUP)" && printf "%s|%s" "$KAFKA_HEAP_OPTS" "$TOPIC_GROUP"'], {
      cwd: path.join(__dirname, '..', '..'),
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', TOPIC_GROUP: "it's a group" },
    });
    expect(r.stdout).toBe("-Xms128m -Xmx512m|it's a group");
  });

  test('refuses to print a secret, and a bad value fails with its message', () => {
    const secret = runNode('scripts/config.js', ['get', 'POSTGRES_PASSWORD'], { POSTGRES_PASSWORD: 'hunter2-not-real' });
    expect(secret.status).toBe(2);
    expect(secret.stdout).not.toContain('hunter2');
    expect(secret.stderr).toContain('POSTGRES_PASSWORD is a secret');
    const all = runNode('scripts/config.js', ['--shell'], { POSTGRES_PASSWORD: 'hunter2-not-real' });
    expect(all.status).toBe(0);
    expect(all.stdout).not.toContain('hunter2');
    const bad = runNode('scripts/config.js', ['get', 'STREAM_PARTITIONS'], { STREAM_PARTITIONS: 'x' });
    expect([bad.status, bad.stderr.trim()]).toEqual([2, "config: STREAM_PARTITIONS must be a whole number, got 'x'"]);
  });
});
