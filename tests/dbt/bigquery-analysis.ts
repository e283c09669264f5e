/**
 * The dbt project's BigQuery SQL checked by GoogleSQL's analyzer (tests/dbt/bigquery-target.test.ts):
 * `dbt compile --target bigquery` without credentials, then every compiled model and data test
 * analyzed against the warehouse's BigQuery schemas. The sources get the schemas the BigQuery
 * adapter creates (jobs/lib/warehouse/bigquery-schema.ts over jobs/catalog.ts); the models are
 * analyzed in dependency order, each model's output columns becoming the table the next reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import {
  destinationSchema,
  ETL_RUNS_SCHEMA,
  QUARANTINE_SCHEMA,
  STREAM_OFFSETS_SCHEMA,
  type BigQueryTableSchema,
} from '../../jobs/lib/warehouse/bigquery/schema';
import { runDbtBuild } from '../../scripts/dbt-run';
import { EXTRA_TABLES } from '../../scripts/dbt-sources';
import type { SchemaField, ZetaSqlAnalyzer } from './zetasql-analyzer';

/** dbt compiles without a connection: no relation cache, no introspective queries. */
export const OFFLINE_COMPILE = ['--no-populate-cache', 'compile', '--no-introspect'];


/** `dbt compile` for BigQuery offline (env from dbtEnv with DBT_TARGET=bigquery); extra args e.g. --project-dir. */
export async function compileOffline(env: NodeJS.ProcessEnv, log: (l: string) => void, extra: string[] = []): Promise<Manifest> {
  await runDbtBuild({ env, log, args: [...OFFLINE_COMPILE, ...extra] });
  return JSON.parse(fs.readFileSync(path.join(env.DBT_TARGET_PATH!, 'manifest.json'), 'utf8')) as Manifest;
}

/**
 * The BigQuery rendering of a Jinja snippet (`dbt compile --inline`, offline), e.g. a macro's SQL
 * on a path the models do not take by default.
 */
export async function compileInline(env: NodeJS.ProcessEnv, jinja: string): Promise<string> {
  const lines: string[] = [];
  await runDbtBuild({ env, log: (l) => lines.push(l), args: ['--quiet', ...OFFLINE_COMPILE, '--output', 'json', '--inline', jinja] });
  const out = lines.join('\n');
  return (JSON.parse(out.slice(out.indexOf('{'))) as { compiled: string }).compiled;
}

export interface ManifestNode {
  readonly unique_id: string;
  readonly resource_type: string;
  readonly name: string;
  readonly relation_name?: string | null;
  readonly compiled_code?: string;
  readonly depends_on: { readonly nodes: readonly string[] };
}

export interface ManifestSource {
  readonly unique_id: string;
  readonly source_name: string;
  readonly name: string;
  readonly relation_name: string;
  readonly config?: { readonly meta?: { readonly catalog_name?: string } };
}

export interface Manifest {
  readonly nodes: Readonly<Record<string, ManifestNode>>;
  readonly sources: Readonly<Record<string, ManifestSource>>;
}

const asFields = (s: BigQueryTableSchema): SchemaField[] =>
  s.fields.map((f) => ({ name: f.name!, type: f.type!, mode: f.mode ?? 'NULLABLE' }));

/**
 * Every table of the warehouse on BigQuery by its catalog name (`store.fact_orders`), with the
 * schema the BigQuery adapter creates it with; tables dbt reads that the adapter does not create
 * (the stream layer's availability) from the DDL sources.yml declares them with.
 */
export function warehouseSchemas(): Map<string, SchemaField[]> {
  const out = new Map<string, SchemaField[]>();
  for (const ds of new Set(catalog.destinations.map((d) => d.dataset))) {
    out.set(`${ds}._etl_runs`, asFields(ETL_RUNS_SCHEMA));
    out.set(`${ds}._quarantine`, asFields(QUARANTINE_SCHEMA));
    out.set(`${ds}._stream_offsets`, asFields(STREAM_OFFSETS_SCHEMA));
  }
  for (const d of catalog.destinations) out.set(`${d.dataset}.${d.table}`, asFields(destinationSchema(d)));
  for (const t of EXTRA_TABLES) {
    const name = `${t.dataset}.${t.table}`;
    if (!out.has(name)) out.set(name, t.columns.map((c) => ({ name: c.name, type: c.type, mode: c.nullable ? 'NULLABLE' : 'REQUIRED' })));
  }
  return out;
}

/** A catalog type as the analyzer reports a column of that type (BigQuery's REST names). */
export const restType = (catalogType: string): string => ({ INT64: 'INTEGER', BOOL: 'BOOLEAN' })[catalogType] ?? catalogType;

/** `project`.`dataset`.`table` (dbt's BigQuery relation) as project.dataset.table. */
export const tableName = (relation: string): string => relation.replace(/`/g, '');

export interface NodeCheck {
  readonly id: string;
  readonly kind: 'model' | 'test';
  /** The analyzer's rejection (or ours: an unnamed model column), absent when accepted. */
  readonly error?: string;
  /** A model's output columns. */
  readonly fields?: SchemaField[];
}

/** Models first (dependencies before dependents), then data tests; only nodes dbt compiled. */
function analysisOrder(manifest: Manifest): ManifestNode[] {
  const compiled = Object.values(manifest.nodes).filter((n) => typeof n.compiled_code === 'string');
  const models = new Map(compiled.filter((n) => n.resource_type === 'model').map((n) => [n.unique_id, n]));
  const ordered: ManifestNode[] = [];
  const seen = new Set<string>();
  const visit = (n: ManifestNode) => {
    if (seen.has(n.unique_id)) return;
    seen.add(n.unique_id);
    for (const dep of n.depends_on.nodes) {
      const m = models.get(dep);
      if (m) visit(m);
    }
    ordered.push(n);
  };
  [...models.values()].sort((a, b) => a.unique_id.localeCompare(b.unique_id)).forEach(visit);
  const tests = compiled.filter((n) => n.resource_type === 'test').sort((a, b) => a.unique_id.localeCompare(b.unique_id));
  return [...ordered, ...tests];
}

/** Declares the sources, then analyzes every compiled model (declaring its output) and data test. */
export async function analyzeProject(manifest: Manifest, analyzer: ZetaSqlAnalyzer, schemas = warehouseSchemas()): Promise<NodeCheck[]> {
  for (const s of Object.values(manifest.sources)) {
    const catalogName = s.config?.meta?.catalog_name;
    const fields = catalogName ? schemas.get(catalogName) : undefined;
    if (!fields) throw new Error(`source ${s.unique_id} (${catalogName ?? 'no catalog_name'}) has no BigQuery schema in the warehouse`);
    await analyzer.defineTable(tableName(s.relation_name), fields);
  }
  const checks: NodeCheck[] = [];
  for (const node of analysisOrder(manifest)) {
    const r = await analyzer.analyze(node.compiled_code!);
    if (node.resource_type === 'test') {
      checks.push({ id: node.unique_id, kind: 'test', ...(r.ok ? {} : { error: r.message }) });
      continue;
    }
    if (!r.ok) {
      checks.push({ id: node.unique_id, kind: 'model', error: r.message });
      continue;
    }
    // BigQuery refuses a view or table with an unnamed column (the analyzer names it $colN).
    const unnamed = r.fields.filter((f) => f.name.startsWith('$'));
    if (unnamed.length > 0) {
      checks.push({ id: node.unique_id, kind: 'model', fields: r.fields, error: `${unnamed.length} output column(s) without a name` });
      continue;
    }
    await analyzer.defineTable(tableName(node.relation_name!), r.fields);
    checks.push({ id: node.unique_id, kind: 'model', fields: r.fields });
  }
  return checks;
}

/** One line per rejected node, for assertion messages. */
export const rejections = (checks: readonly NodeCheck[]): string[] =>
  checks.filter((c) => c.error).map((c) => `${c.id}: ${c.error}`);
