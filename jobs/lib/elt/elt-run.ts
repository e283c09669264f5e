/**
 * ELT (BATCH_MODE=elt): after local staging (validation, quarantine, PII masking), a job uploads
 * its staged sources and quarantine rows as Parquet into staging tables of its run, then runs the
 * checks (checks-sql.ts) and the transform (transform-render.ts, BigQuery dialect) as SQL jobs in
 * the warehouse and swaps the destination in one transaction. pipeline.ts drives the phases:
 *
 *   sweep leftovers -> upload -> check -> transform -> commit,   and drop the run's tables always.
 *
 * Staging tables are `_stg_<runId>_<source>` (runId with `_` for `-`), `..._quarantine` and
 * `..._result` in the destination's dataset: a run of the same destination finds the tables of an
 * earlier, killed run by that prefix and drops them first. Runs of one destination do not overlap
 * (one Airflow task per table), so a table of that prefix not of this run is a leftover.
 * holdAtEltPhase (test-hold.ts, inert unless set) marks where a test holds a job to SIGKILL it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BatchDestination, Catalog, SourceTable } from '../catalog-types';
import { RESCUED_DATA_COLUMN } from '../catalog-types';
import { findSource, stagedColumns } from '../catalog-check';
import { moved } from '../checks';
import { QUARANTINE_COLUMNS_DDL, SOURCE_TO_COLUMN_TYPE, stagingTableName } from '../ddl';
import { logger } from '../log';
import { maskCardRuns } from '../pii';
import type { OrphanCheck, SourceQuality } from '../quality';
import { renderTransform } from '../transform-render';
import type { EltColumn, EltTarget, RunRecord } from '../warehouse/types';
import { bqIdent } from '../sql/quote';
import { holdAtEltPhase } from '../test-hold';
import { derivedParams, derivedScript, duplicateKeysScript, foreignKeyQuery } from './checks-sql';

/**
 * The quarantine table's columns, from the one DDL both warehouses use. Staging columns are all
 * NULLABLE: DuckDB writes Parquet columns as optional, and `_quarantine` itself checks REQUIRED.
 */
export const QUARANTINE_COLUMNS: EltColumn[] = QUARANTINE_COLUMNS_DDL.split(', ').map((def) => {
  const [name, type] = def.split(' ');
  return { name, type: type === 'BIGINT' ? 'INT64' : 'STRING', nullable: true };
});

const stagedSourceColumns = (source: SourceTable): EltColumn[] => [
  { name: '_line', type: 'INT64', nullable: true },
  ...stagedColumns(source).map((c) => ({ name: c.name, type: SOURCE_TO_COLUMN_TYPE[c.type], nullable: true })),
  { name: RESCUED_DATA_COLUMN, type: 'STRING', nullable: true },
];

export const stagingPrefix = (runId: string): string => `_stg_${runId.replace(/[^A-Za-z0-9_]/g, '_')}`;

/** Staging tables of a destination's runs (runId: `<table>-<yyyymmddThhmmss>-<hex6>`). */
const stagingOf = (dest: BatchDestination) => new RegExp(`^_stg_${dest.table}_\\d{8}T\\d{6}_[0-9a-f]{6}_`);

export interface EltContext {
  readonly target: EltTarget;
  readonly catalog: Catalog;
  readonly dest: BatchDestination;
  readonly runId: string;
  readonly sourceDir: string;
  /** The job's scratch folder: the Parquet files are written there. */
  readonly scratchDir: string;
  /** The job's scratch DuckDB with the staged `src_<source>` tables and the quarantine table. */
  readonly connection: DuckDBConnection;
  readonly quarantineTable: string;
}

export class EltRun {
  private readonly prefix: string;
  /** Bytes of Parquet uploaded by this run. */
  bytesUploaded = 0;

  constructor(private readonly ctx: EltContext) {
    this.prefix = stagingPrefix(ctx.runId);
  }

  private name(what: string): string {
    return `${this.prefix}_${what}`;
  }
  private ref(what: string): string {
    return this.ctx.target.tableRef(this.ctx.dest, this.name(what));
  }
  private get quarantine(): string {
    return this.ref('_quarantine');
  }

  /** Drops staging tables an earlier run of this destination left (killed before its cleanup). */
  async sweepLeftovers(): Promise<string[]> {
    const mine = stagingOf(this.ctx.dest);
    const left = (await this.ctx.target.listTables(this.ctx.dest)).filter((t) => mine.test(t) && !t.startsWith(`${this.prefix}_`));
    for (const t of left) await this.ctx.target.dropTable(this.ctx.dest, t);
    if (left.length > 0) logger.info('elt: dropped staging tables of an earlier run', { job: this.ctx.dest.name, tables: left });
    return left;
  }

  /** Every staged source and the quarantine rows so far, as Parquet, into the run's staging tables. */
  async upload(): Promise<void> {
    const { connection: c, dest, target } = this.ctx;
    const put = async (localTable: string, name: string, columns: readonly EltColumn[]) => {
      const file = path.join(this.ctx.scratchDir, `${name}.parquet`);
      await c.run(`COPY (SELECT ${columns.map((col) => `"${col.name}"`).join(', ')} FROM ${localTable}) TO '${file.replace(/'/g, "''")}' (FORMAT parquet)`);
      try {
        this.bytesUploaded += await target.loadParquet(dest, this.name(name), file, columns);
      } finally {
        fs.rmSync(file, { force: true });
      }
    };
    for (const s of dest.sources) {
      const source = findSource(this.ctx.catalog, s);
      await put(stagingTableName(source), source.name, stagedSourceColumns(source));
      await holdAtEltPhase('upload');
    }
    await put(this.ctx.quarantineTable, '_quarantine', QUARANTINE_COLUMNS);
  }

  /** checks.ts's checks, in the warehouse: returns the sources' reports with their counts. */
  async check(staged: readonly SourceQuality[]): Promise<SourceQuality[]> {
    const { catalog, dest, target } = this.ctx;
    const sources = [...staged];
    const base = (q: SourceQuality) => ({ run_id: this.ctx.runId, destination: dest.name, source: q.source, file: path.join(this.ctx.sourceDir, q.file) });
    for (const q of sources) {
      const source = findSource(catalog, q.source);
      await target.query(`duplicate keys of ${source.name}`, duplicateKeysScript(source, this.ref(source.name), this.quarantine), {
        ...base(q), key_columns: source.key.join(','),
      });
      await holdAtEltPhase('checks');
    }
    for (const rule of dest.derived ?? []) {
      const q = sources.find((x) => x.source === rule.source.source)!;
      const source = findSource(catalog, q.source);
      const via = findSource(catalog, rule.via.source);
      await target.query(`derived rule ${rule.column} of ${dest.name}`,
        derivedScript(dest, rule, source, via, this.ref(source.name), this.ref(via.name), this.quarantine), { ...base(q), ...derivedParams(rule) });
    }
    await this.maskCheckedRows();
    const counts = await target.query('quarantine counts',
      `SELECT source, reason_code, COUNT(*) AS n, ARRAY_AGG(reason ORDER BY line LIMIT 5) AS samples FROM ${this.quarantine} ` +
      `WHERE reason_code IN ('duplicate_key', 'derived_out_of_range') GROUP BY source, reason_code`);
    const countOf = (source: string, code: string) => counts.find((r) => r.source === source && r.reason_code === code);
    const names = new Set(dest.sources);
    for (let i = 0; i < sources.length; i++) {
      const q = sources[i];
      const dup = countOf(q.source, 'duplicate_key');
      const derived = countOf(q.source, 'derived_out_of_range');
      const dupCount = Number(dup?.n ?? 0);
      if (derived) logger.warn('rows quarantined by a derived-value rule', { job: dest.name, source: q.source, rows: Number(derived.n) });
      const orphanForeignKeys: OrphanCheck[] = [];
      const source = findSource(catalog, q.source);
      for (const fk of source.foreignKeys ?? []) {
        if (!names.has(fk.references.source)) continue;
        const [r] = await target.query(`foreign key ${source.name}(${fk.columns.join(',')})`, foreignKeyQuery(fk, this.ref(source.name), this.ref(fk.references.source)));
        orphanForeignKeys.push({
          columns: fk.columns, references: `${fk.references.source}(${fk.references.columns.join(',')})`,
          count: Number(r?.n ?? 0), samples: ((r?.samples as unknown[] | null) ?? []).map(String),
        });
      }
      sources[i] = {
        ...moved(moved(q, 'duplicate_key', dupCount), 'derived_out_of_range', Number(derived?.n ?? 0)),
        duplicateKeys: { count: dupCount, samples: ((dup?.samples as unknown[] | null) ?? []).map(String) },
        orphanForeignKeys,
      };
    }
    return sources;
  }

  /**
   * The free-text rule (quarantine-mask.ts) on the rows the checks wrote: those with twelve
   * digits or more come back, are masked by maskCardRuns and go back where they changed.
   */
  private async maskCheckedRows(): Promise<void> {
    const twelve = (col: string) => `LENGTH(REGEXP_REPLACE(IFNULL(${col}, ''), r'[^0-9]', '')) >= 12`;
    const rows = await this.ctx.target.query('quarantine rows to mask',
      `SELECT source, line, reason_code, reason, raw FROM ${this.quarantine} ` +
      `WHERE reason_code IN ('duplicate_key', 'derived_out_of_range') AND (${twelve('reason')} OR ${twelve('raw')})`);
    const changed = rows
      .map((r) => ({ source: String(r.source), line: String(r.line), reason_code: String(r.reason_code), reason: maskCardRuns(String(r.reason)), raw: r.raw === null ? null : maskCardRuns(String(r.raw)), was: r }))
      .filter((r) => r.reason !== r.was.reason || r.raw !== r.was.raw)
      .map(({ was: _was, ...r }) => r);
    if (changed.length === 0) return;
    await this.ctx.target.query('mask quarantine rows',
      `MERGE ${this.quarantine} T USING (SELECT JSON_VALUE(m, '$.source') AS source, CAST(JSON_VALUE(m, '$.line') AS INT64) AS line, ` +
      `JSON_VALUE(m, '$.reason_code') AS reason_code, JSON_VALUE(m, '$.reason') AS reason, JSON_VALUE(m, '$.raw') AS raw ` +
      'FROM UNNEST(JSON_QUERY_ARRAY(@rows)) AS m) S ON T.source = S.source AND T.line = S.line AND T.reason_code = S.reason_code ' +
      'WHEN MATCHED THEN UPDATE SET reason = S.reason, raw = S.raw', { rows: JSON.stringify(changed) });
  }

  /** The transform into the run's result table (typed by the destination's schema); returns its rows. */
  async transform(): Promise<number> {
    const { dest, target } = this.ctx;
    const sql = renderTransform(dest.transform, {
      dialect: 'bigquery',
      sourceTable: (s) => this.ref(s),
      dropRescued: !dest.columns.some((c) => c.name === RESCUED_DATA_COLUMN),
    });
    await target.createTable(dest, this.name('_result'), dest.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })));
    const cols = dest.columns.map((c) => bqIdent(c.name)).join(', ');
    await target.query(`transform ${dest.transform} (ELT)`, `INSERT INTO ${this.ref('_result')} (${cols}) SELECT ${cols} FROM (${sql})`);
    await holdAtEltPhase('transform');
    const [r] = await target.query('result rows', `SELECT COUNT(*) AS n FROM ${this.ref('_result')}`);
    return Number(r.n);
  }

  /** Keys of the result repeated (a join that multiplies rows is a transform bug). */
  async duplicateResultKeys(): Promise<number> {
    const keys = this.ctx.dest.key.map(bqIdent).join(', ');
    const [r] = await this.ctx.target.query('result keys',
      `SELECT COUNT(*) AS n FROM (SELECT ${keys} FROM ${this.ref('_result')} GROUP BY ${keys} HAVING COUNT(*) > 1)`);
    return Number(r.n);
  }

  /** The first quarantine rows, for the report (as pipeline.ts samples them). */
  async quarantineSamples() {
    const rows = await this.ctx.target.query('quarantine samples',
      `SELECT source, line, column_name, reason FROM ${this.quarantine} ORDER BY source, line LIMIT 20`);
    return rows.map((r) => ({
      source: String(r.source),
      line: r.line === null ? null : Number(r.line),
      column: r.column_name === null ? null : String(r.column_name),
      reason: String(r.reason),
    }));
  }

  /** The atomic swap: destination, its quarantine rows and the run record in one transaction. */
  async commit(run: RunRecord): Promise<void> {
    await holdAtEltPhase('commit');
    await this.ctx.target.replaceFromStaging(this.ctx.dest, this.name('_result'), this.name('_quarantine'), run);
    await holdAtEltPhase('committed');
  }

  /** Drops every staging table of this run (after success and after a failure alike). */
  async dropStaging(): Promise<void> {
    const tables = (await this.ctx.target.listTables(this.ctx.dest)).filter((t) => t.startsWith(`${this.prefix}_`));
    for (const t of tables) await this.ctx.target.dropTable(this.ctx.dest, t);
  }
}
