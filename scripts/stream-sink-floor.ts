/**
 * The DuckDB sink's floor, for `bench:stream`: the cheapest durable write of the same events on
 * this machine, with no Kafka and no checks. Each commit's event values (the JSON text as the
 * producer wrote it) are joined into newline-delimited JSON, parsed by DuckDB's own reader
 * (C++, both threads), appended to a keyless table per topic and committed to a DuckDB file.
 * A consumer that commits its events to a DuckDB file pays at least this per event, plus
 * fetching, checking and keying them: floor / perf tool bounds the consumer's ratio from above.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../jobs/catalog';
import { findSource } from '../jobs/lib/catalog-check';
import { quoteIdent } from '../jobs/lib/ddl';
import { openDuckDb } from '../jobs/lib/sql/duckdb-file';
import { sqlString } from '../jobs/lib/sql/quote';

export interface SinkEvent {
  /** The source the event is a row of (its topic's base name). */
  readonly source: string;
  readonly value: string;
}

export async function sinkFloor(
  file: string,
  events: readonly SinkEvent[],
  commitEvents: number,
): Promise<{ readonly commits: number; readonly seconds: number }> {
  for (const f of [file, `${file}.wal`]) fs.rmSync(f, { force: true });
  const db = await openDuckDb(file, 0, { threads: String(os.cpus().length) });
  const c = db.connection;
  const scratch = path.join(os.tmpdir(), `sink-floor-${process.pid}.ndjson`);
  const sources = [...new Set(events.map((e) => e.source))].map((name) => findSource(catalog, name));
  try {
    for (const s of sources) {
      await c.run(`CREATE TABLE ${quoteIdent(s.name)} (${s.columns.map((col) => `${quoteIdent(col.name)} VARCHAR`).join(', ')})`);
    }
    let commits = 0;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < events.length; i += commitEvents) {
      const slice = events.slice(i, i + commitEvents);
      await c.run('BEGIN TRANSACTION');
      for (const s of sources) {
        const lines = slice.filter((e) => e.source === s.name).map((e) => e.value);
        if (lines.length === 0) continue;
        fs.writeFileSync(scratch, lines.join('\n') + '\n');
        const columns = s.columns.map((col) => `${sqlString(col.name)}: 'VARCHAR'`).join(', ');
        await c.run(`INSERT INTO ${quoteIdent(s.name)} SELECT * FROM read_json(${sqlString(scratch)}, format = 'newline_delimited', columns = {${columns}})`);
      }
      await c.run('COMMIT');
      commits++;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    return { commits, seconds };
  } finally {
    db.close();
    for (const f of [file, `${file}.wal`, scratch]) fs.rmSync(f, { force: true });
  }
}
