/**
 * GoogleSQL's analyzer for the dbt suites: the engine of the executing BigQuery double
 * (tools/zetasql-double, built by scripts/setup-zetasql.sh) used through its analysis-only ops.
 * Tables are declared by schema (no rows); a statement is analyzed with BigQuery's own language
 * options, and a rejection carries the analyzer's message, as BigQuery would report it.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { ROOT } from '../helpers/env';

const STATE = process.env.ZETASQL_STATE_DIR ?? path.join(ROOT, '.state', 'zetasql');

/** A column as BigQuery's REST schema names it (`INTEGER`, `BOOLEAN`, ...; nested fields omitted). */
export interface SchemaField {
  readonly name: string;
  readonly type: string;
  readonly mode?: string;
}

export type Analysis = { ok: true; fields: SchemaField[] } | { ok: false; message: string };

export class ZetaSqlAnalyzer {
  private seq = 0;
  private readonly pending = new Map<number, (reply: any) => void>();
  private stderr = '';

  private constructor(private readonly proc: ChildProcessWithoutNullStreams) {}

  /** Starts the engine (a JVM: start once per suite) and waits for its ready line. */
  static async start(project: string): Promise<ZetaSqlAnalyzer> {
    const cp = [path.join(STATE, 'build', 'classes'), path.join(STATE, 'libs', '*')].join(path.delimiter);
    const proc = spawn('java', ['-Xmx512m', '-cp', cp, 'store.etl.zetasql.Main', project], { stdio: 'pipe' });
    const a = new ZetaSqlAnalyzer(proc);
    proc.stderr.on('data', (d: Buffer) => {
      a.stderr = (a.stderr + d.toString()).slice(-4000);
    });
    const lines = readline.createInterface({ input: proc.stdout });
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`ZetaSQL engine exited (${code}) before it was ready: ${a.stderr}`));
      proc.once('exit', onExit);
      lines.once('line', (first) => {
        proc.off('exit', onExit);
        if (JSON.parse(first).ready) resolve();
        else reject(new Error(`ZetaSQL engine: unexpected first line ${first}`));
        lines.on('line', (line) => {
          const reply = JSON.parse(line);
          const done = a.pending.get(reply.id);
          if (done) {
            a.pending.delete(reply.id);
            done(reply);
          }
        });
      });
    });
    proc.on('exit', (code) => {
      for (const done of a.pending.values()) done({ ok: false, reason: 'internalError', message: `ZetaSQL engine exited (${code}): ${a.stderr}` });
      a.pending.clear();
    });
    return a;
  }

  private call(op: string, args: Record<string, unknown>): Promise<any> {
    const id = ++this.seq;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.proc.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  /** Declares (or replaces) table `project.dataset.table` with these columns. */
  async defineTable(fullName: string, fields: readonly SchemaField[]): Promise<void> {
    const r = await this.call('defineAnalysisTable', { table: fullName, fields });
    if (!r.ok) throw new Error(`cannot declare ${fullName}: ${r.message}`);
  }

  /** Analyzes one statement: a query's output columns, or the analyzer's rejection. */
  async analyze(sql: string): Promise<Analysis> {
    const r = await this.call('analyze', { sql });
    if (r.ok) return { ok: true, fields: r.fields };
    if (r.reason === 'internalError') throw new Error(`ZetaSQL engine failed: ${r.message}`);
    return { ok: false, message: r.message };
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.stdin.end();
    await exited;
  }
}
