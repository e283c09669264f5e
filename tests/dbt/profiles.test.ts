/** profiles.yml from env: DuckDB by default with an absolute path, BigQuery from GCP_* env. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { profileSettings, renderProfiles, writeProfiles } from '../../scripts/dbt-profiles';
import { tempDir } from '../helpers/env';

type Profiles = { store: { target: string; outputs: Record<string, Record<string, unknown>> } };
const parse = (s: string) => YAML.parse(s) as Profiles;

test('defaults: duckdb target on <cwd>/.state/warehouse.duckdb, profiles in .state/dbt', () => {
  const s = profileSettings({}, '/repo');
  expect(s.target).toBe('duckdb');
  expect(s.profilesDir).toBe('/repo/.state/dbt');
  const p = parse(renderProfiles(s));
  expect(p.store.target).toBe('duckdb');
  expect(p.store.outputs.duckdb).toEqual({
    type: 'duckdb',
    path: '/repo/.state/warehouse.duckdb',
    schema: 'store',
    // The stream layer's tables: its snapshot, read-only, as database `stream` (the `stream` source).
    attach: [{ path: '/repo/.state/stream-snapshot.duckdb', alias: 'stream', read_only: true }],
    threads: 2,
  });
  expect(profileSettings({ STREAM_SNAPSHOT_PATH: 's/snap.duckdb' }, '/repo').streamSnapshotPath).toBe('/repo/s/snap.duckdb');
});

test('a relative DUCKDB_PATH / ETL_STATE_DIR is made absolute against the repo root', () => {
  const s = profileSettings({ DUCKDB_PATH: 'x/wh.duckdb', ETL_STATE_DIR: 'st' }, '/repo');
  expect(s.duckdbPath).toBe('/repo/x/wh.duckdb');
  expect(s.profilesDir).toBe('/repo/st/dbt');
  expect(profileSettings({ ETL_STATE_DIR: '/abs/st' }, '/repo').duckdbPath).toBe('/abs/st/warehouse.duckdb');
  expect(profileSettings({ DBT_PROFILES_DIR: 'p' }, '/repo').profilesDir).toBe('/repo/p');
});

test('bigquery target: keyfile, project, dataset and location from env', () => {
  const env = {
    DBT_TARGET: 'bigquery',
    GCP_PROJECT_ID: 'acme-prod',
    GOOGLE_APPLICATION_CREDENTIALS: 'secrets/sa.json',
    BIGQUERY_DATASET: 'store_prod',
    BIGQUERY_LOCATION: 'EU',
  };
  const p = parse(renderProfiles(profileSettings(env, '/repo')));
  expect(p.store.target).toBe('bigquery');
  expect(p.store.outputs.bigquery).toMatchObject({
    type: 'bigquery',
    method: 'service-account',
    keyfile: '/repo/secrets/sa.json',
    project: 'acme-prod',
    dataset: 'store_prod',
    location: 'EU',
  });
});

test('bigquery target without a project or keyfile is refused; a bad DBT_TARGET too', () => {
  expect(() => renderProfiles(profileSettings({ DBT_TARGET: 'bigquery' }, '/repo'))).toThrow(
    /GCP_PROJECT_ID and GOOGLE_APPLICATION_CREDENTIALS/,
  );
  expect(() => profileSettings({ DBT_TARGET: 'snowflake' }, '/repo')).toThrow(/duckdb' or 'bigquery/);
  expect(() => profileSettings({ DBT_THREADS: '0' }, '/repo')).toThrow(/DBT_THREADS/);
});

test('writeProfiles writes profiles.yml (mode 600) into DBT_PROFILES_DIR', () => {
  const dir = tempDir('dbt-profiles');
  const file = writeProfiles({ DBT_PROFILES_DIR: dir, DUCKDB_PATH: 'w.duckdb' }, dir);
  expect(file).toBe(path.join(dir, 'profiles.yml'));
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  expect(parse(fs.readFileSync(file, 'utf8')).store.outputs.duckdb.path).toBe(path.join(dir, 'w.duckdb'));
});
