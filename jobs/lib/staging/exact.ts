/**
 * The exact staging strategy: csv-parse streams the file (extract.ts: trimming, BOM, CRLF,
 * blank lines, invalid UTF-8, over-long lines) and every row goes through the shared row code
 * (rows.ts: ajv and the catalog's rules). The authority on every rejected row.
 */
import type { SourceTable } from '../catalog-types';
import { duckdbCreateStagingTable, stagingTableName } from '../ddl';
import { openSource } from '../extract';
import { createProgress } from '../progress';
import type { SourceQuality } from '../quality';
import { QUARANTINE_TABLE, type StageContext } from './quarantine';
import { rowStager, sourceQuality, Tally } from './rows';

export async function stageExact(ctx: StageContext, source: SourceTable): Promise<SourceQuality> {
  const c = ctx.connection;
  const reader = await openSource(source, ctx.sourceDir, { maxRecordBytes: ctx.maxRecordBytes, contract: ctx.contract });
  await c.run(duckdbCreateStagingTable(source));
  const rows = await c.createAppender(stagingTableName(source));
  const quarantine = await c.createAppender(QUARANTINE_TABLE);
  const tally = new Tally();
  const progress = createProgress(`${source.file}`, reader.sizeBytes);
  const stageRow = rowStager(ctx, source, reader.file, reader.header, rows, quarantine, tally);
  try {
    for await (const batch of reader.batches()) {
      for (const row of batch) stageRow(row);
      progress.update(reader.counters.bytesRead, tally.rowsRead);
    }
    progress.update(reader.sizeBytes, tally.rowsRead);
  } finally {
    progress.stop();
    rows.closeSync();
    quarantine.closeSync();
  }
  return sourceQuality(source, reader.header, reader.counters, tally);
}
