/**
 * Staging, one stage with two strategies behind one interface: every row of a source file is
 * validated against the catalog and either appended (typed, PII dropped or masked) to its
 * staging table `src_<source>` or to the quarantine with file, line, column and reason.
 *  - bulk (bulk.ts): DuckDB reads the file and checks lines with the catalog's rules compiled to
 *    SQL; lines it flags go through the exact path's row code. It may decline a file (say why)
 *    before staging anything: then the exact strategy stages all of it.
 *  - exact (exact.ts): csv-parse + ajv for every row.
 * Both give the same tables, quarantine and report (tests/batch/bulk-agreement.test.ts).
 */
import type { SourceTable } from '../catalog-types';
import { logger } from '../log';
import type { SourceQuality } from '../quality';
import { stageBulk } from './bulk';
import { stageExact } from './exact';
import type { StageContext } from './quarantine';

export type StagingPath = 'bulk' | 'exact';

/** A staging strategy: stages a whole source, or declines the file before staging any of it. */
type Strategy = (ctx: StageContext, source: SourceTable) => Promise<SourceQuality | { readonly fallback: string }>;

const STRATEGIES: Readonly<Record<StagingPath, Strategy>> = { bulk: stageBulk, exact: stageExact };

/** Which strategy staged a source, and why the bulk one did not when it did not. */
export interface StagedSource {
  readonly quality: SourceQuality;
  readonly path: StagingPath;
  readonly fallback?: string;
}

export async function stageSource(ctx: StageContext, source: SourceTable): Promise<StagedSource> {
  const chosen = ctx.batchPath ?? 'exact';
  const staged = await STRATEGIES[chosen](ctx, source);
  if (!('fallback' in staged)) return { quality: staged, path: chosen };
  logger.info('bulk path not taken for this file: exact path for all of it', { source: source.name, file: source.file, why: staged.fallback });
  const exact = await STRATEGIES.exact(ctx, source);
  if ('fallback' in exact) throw new Error(`the exact staging strategy declined ${source.file}`);
  return { quality: exact, path: 'exact', fallback: staged.fallback };
}
