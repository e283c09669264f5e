/**
 * The DAG generator: dags/ is exactly what `npm run make-dags` renders from the catalog (the
 * committed files are current), one DAG per batch table plus dbt_dag, every setting from the
 * catalog with its defaults, and per-table overrides honoured.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { Catalog } from '../../jobs/lib/catalog-types';
import { SPEC } from '../../jobs/lib/config/spec';
import { DAG_SETTINGS_FILE, dagSpecs, diffDags, py, render, renderDags, renderDagsFolder } from '../../scripts/make-dags';
import { ROOT, runNode } from '../helpers/env';

const DAGS = path.join(ROOT, 'dags');
const batchTables = catalog.destinations.filter((d) => d.mode === 'batch').map((d) => d.table);

/** The value of `name=` inside the DAG(...) call, or of a module-level `NAME = ` assignment. */
function pyValue(source: string, name: string): string {
  const m = new RegExp(`^\\s*${name}\\s*=\\s*(.+?),?$`, 'm').exec(source);
  if (!m) throw new Error(`${name} not found`);
  return m[1];
}

describe('make-dags', () => {
  test('the committed dags/ are exactly what the generator renders (no diff, nothing stale)', () => {
    const rendered = renderDagsFolder();
    const { changed, stale } = diffDags(DAGS, rendered);
    expect({ changed, stale }).toEqual({ changed: [], stale: [] });
    const onDisk = fs.readdirSync(DAGS).filter((f) => f.endsWith('.py')).sort();
    // Besides the generated DAGs, only the hand-written task factory they share.
    expect(onDisk).toEqual([...rendered.keys(), 'etl_task.py'].sort());
  });

  test('`make-dags --check` (the compiled CLI) agrees', () => {
    const r = runNode('scripts/make-dags.js', ['--check']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`dags/ is up to date (${batchTables.length + 1} DAGs and etl_settings.py)`);
  });

  test('one DAG per batch destination plus dbt_dag; stream tables get none', () => {
    const files = [...renderDags().keys()];
    expect(files).toEqual([...batchTables.map((t) => `${t}_dag.py`), 'dbt_dag.py']);
    expect(batchTables).toEqual(['fact_orders', 'fact_order_details', 'dim_products', 'dim_users', 'dim_vendors']);
    for (const d of catalog.destinations.filter((x) => x.mode === 'stream')) {
      expect(files).not.toContain(`${d.table}_dag.py`);
    }
  });

  test('schedule, start date, retries and image come from the catalog and its defaults', () => {
    const rendered = renderDags();
    const defaults = catalog.dagDefaults;
    for (const table of batchTables) {
      const dest = catalog.destinations.find((d) => d.table === table)!;
      const src = rendered.get(`${table}_dag.py`)!;
      expect(pyValue(src, 'dag_id')).toBe(`"${table}_dag"`);
      expect(pyValue(src, 'image')).toBe(`"store-etl/${table}:latest"`);
      expect(pyValue(src, 'local_command')).toBe(`["node", "dist/jobs/${table}.js"]`);
      expect(pyValue(src, 'schedule')).toBe(py(dest.dag?.schedule ?? defaults.schedule));
      expect(src).toContain(`"retries": ${dest.dag?.retries ?? defaults.retries},`);
      expect(src).toContain(`timedelta(minutes=${dest.dag?.retryDelayMinutes ?? defaults.retryDelayMinutes})`);
      expect(pyValue(src, 'catchup')).toBe('False');
      expect(src).toContain('start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),');
    }
    expect(pyValue(rendered.get('fact_orders_dag.py')!, 'schedule')).toBe('"@hourly"');
    expect(pyValue(rendered.get('dim_vendors_dag.py')!, 'schedule')).toBe('"@daily"');
    const dbt = rendered.get('dbt_dag.py')!;
    expect(pyValue(dbt, 'schedule')).toBe('None');
    expect(pyValue(dbt, 'image')).toBe('"store-etl/dbt:latest"');
    expect(pyValue(dbt, 'local_command')).toBe('["bash", "scripts/dbt-build.sh"]');
  });

  test('per-table overrides (schedule, start date, retries, delay, image) win over the defaults', () => {
    const custom: Catalog = {
      ...catalog,
      destinations: catalog.destinations.map((d) =>
        d.table === 'dim_vendors'
          ? { ...d, dag: { schedule: '15 3 * * *', startDate: '2025-02-03', retries: 5, retryDelayMinutes: 9, image: 'registry.example/vendors:1.2' } as never }
          : d,
      ),
    };
    const spec = dagSpecs(custom).find((s) => s.file === 'dim_vendors_dag.py')!;
    expect(spec.vars.schedule).toBe('"15 3 * * *"');
    expect(spec.vars.start_date).toBe('pendulum.datetime(2025, 2, 3, tz="UTC")');
    expect(spec.vars.retries).toBe('5');
    expect(spec.vars.retry_delay_minutes).toBe('9');
    expect(spec.vars.image).toBe('"registry.example/vendors:1.2"');
    const other = dagSpecs(custom).find((s) => s.file === 'dim_users_dag.py')!;
    expect(other.vars.schedule).toBe('"@daily"');
    expect(other.vars.retries).toBe(String(catalog.dagDefaults.retries));
  });

  test('the DAGs read their settings through the generated module, with the spec\'s defaults', () => {
    const src = fs.readFileSync(path.join(DAGS, DAG_SETTINGS_FILE), 'utf8');
    // Independent of the generator: the names the hand-written task module asks for, each with its spec default.
    const task = fs.readFileSync(path.join(DAGS, 'etl_task.py'), 'utf8');
    const asked = [...new Set([...task.matchAll(/setting\("([A-Z_]+)"\)/g)].map((m) => m[1]))];
    expect(asked.length).toBeGreaterThanOrEqual(10);
    for (const name of asked) {
      const spec = SPEC.find((s) => s.name === name);
      expect(spec).toBeDefined();
      expect(src).toContain(`    "${name}": ${spec!.default === undefined ? 'None' : `"${spec!.default}"`},`);
    }
    expect(src).toContain('"ETL_RUNNER": "docker",');
    expect(src).toContain('"ETL_JOB_MEMORY_LIMIT": "2g",');
    // No default is re-derived in Python: the environment is read only through setting().
    expect(task).not.toMatch(/os\.environ\.get\(/);
    expect(task).not.toMatch(/os\.environ\[/);
  });

  test('bad settings and template mistakes are rejected', () => {
    const bad = (dag: object): Catalog => ({
      ...catalog,
      destinations: catalog.destinations.map((d) => (d.table === 'dim_users' ? { ...d, dag } : d)),
    });
    expect(() => dagSpecs(bad({ startDate: '2024/01/01' }))).toThrow(/startDate must be YYYY-MM-DD/);
    expect(() => dagSpecs(bad({ retries: -1 }))).toThrow(/retries must be >= 0/);
    expect(() => render('x = {{ nope }}', {})).toThrow(/unknown variable 'nope'/);
    expect(() => render('x = 1', { extra: '2' })).toThrow(/does not use: extra/);
    expect(py(['a', "b'\"c"])).toBe('["a", "b\'\\"c"]');
    expect(py(null)).toBe('None');
  });
});
