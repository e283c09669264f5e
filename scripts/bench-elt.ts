#!/usr/bin/env node
/**
 * `npm run bench:elt`: what crosses the wire in each batch mode. Generates N orders (default
 * 20000), then runs the five batch jobs with WAREHOUSE=bigquery against the executing BigQuery
 * double (tests/bigquery/bigquery-double.ts; the engine built by scripts/setup-zetasql.sh), once
 * with BATCH_MODE=etl (the finished tables uploaded as NDJSON) and once with BATCH_MODE=elt (the
 * staged sources as Parquet, checks and transforms in BigQuery), each mode in its own process,
 * and prints per mode and job the bytes uploaded, the seconds and the process's peak RSS.
 *
 * The double is a reference evaluator: its joins are far slower than BigQuery's, so seconds here
 * say nothing about BigQuery, and the double's Node side (which holds each upload whole) runs in
 * the job's process, so the RSS is an upper bound of the job's own. Bytes are exact.
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catalog } from '../jobs/catalog';
import type { BatchDestination } from '../jobs/lib/catalog-types';
import { main, parseCommandLine, reportError } from '../jobs/lib/cli';
import { loadConfig } from '../jobs/lib/config';
import { UsageError } from '../jobs/lib/errors';
import { runBatchJob } from '../jobs/lib/pipeline';
import { BigQueryDouble, engineUnavailableReason, PROJECT } from '../tests/bigquery/bigquery-double';
import { generate } from './generate-data';

const HELP = `Usage: npm run bench:elt -- [--orders N] [--dir DIR] [--heap SIZE]

Generates N orders (default 20000) into DIR (default .state/bench/data-N; reused when present),
runs the five batch jobs into the executing BigQuery double in BATCH_MODE=etl and =elt (one
process per mode) and prints the bytes each uploaded (NDJSON vs Parquet), seconds and peak RSS.
--heap: the double's JVM heap (default 2g). Needs: bash scripts/setup-zetasql.sh.`;

interface JobMeasure {
  readonly table: string;
  readonly rowsIn: number;
  readonly rowsOut: number;
  readonly seconds: number;
  readonly bytes: Record<string, number>;
}

const batchTables = () => catalog.destinations.filter((d): d is BatchDestination => d.mode === 'batch');

/** In the child: the double in this process, the five jobs in one mode (from the environment). */
async function measureMode(dataDir: string, stateDir: string, heap: string): Promise<{ jobs: JobMeasure[]; peakRssMb: number }> {
  const double = await BigQueryDouble.start({ heap });
  try {
    const jobs: JobMeasure[] = [];
    for (const d of batchTables()) {
      const before = double.uploadedBytes();
      const t0 = process.hrtime.bigint();
      const r = await runBatchJob(catalog, d.table, loadConfig(undefined, { sourceDir: dataDir, stateDir }));
      const after = double.uploadedBytes();
      const bytes = Object.fromEntries(Object.entries(after).map(([f, n]) => [f, n - (before[f] ?? 0)]).filter(([, n]) => n !== 0));
      jobs.push({ table: d.table, rowsIn: r.run.rowsIn, rowsOut: r.run.rowsOut, seconds: Number(process.hrtime.bigint() - t0) / 1e9, bytes });
    }
    return { jobs, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  } finally {
    await double.stop();
  }
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function bench(orders: number, dir: string | undefined, heap: string): Promise<void> {
  const why = engineUnavailableReason();
  if (why) throw new UsageError(why);
  const config = loadConfig();
  const dataDir = path.resolve(dir ?? path.join(config.stateDir, 'bench', `data-${orders}`));
  const marker = path.join(dataDir, '.complete');
  if (!fs.existsSync(marker)) {
    process.stderr.write(`generating ${fmt(orders)} orders into ${dataDir} ...\n`);
    await generate({ orders, out: dataDir, seed: 42, faults: false, faultRate: 0 });
    fs.writeFileSync(marker, new Date().toISOString());
  }
  const sourceBytes = fs.readdirSync(dataDir).filter((f) => !f.startsWith('.')).reduce((n, f) => n + fs.statSync(path.join(dataDir, f)).size, 0);
  const stateDir = path.join(config.stateDir, 'bench', 'elt-state');
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.mkdirSync(stateDir, { recursive: true });
  // A throwaway service-account key: the real client signs a JWT with it, the double answers.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(stateDir, 'double-key.json');
  fs.writeFileSync(keyFile, JSON.stringify({
    type: 'service_account', project_id: PROJECT, private_key_id: 'bench', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    client_email: `bench@${PROJECT}.iam.gserviceaccount.com`, client_id: '1', token_uri: 'https://oauth2.googleapis.com/token',
  }));
  const results: Record<string, { jobs: JobMeasure[]; peakRssMb: number }> = {};
  for (const mode of ['etl', 'elt'] as const) {
    process.stderr.write(`BATCH_MODE=${mode} ...\n`);
    const r = spawnSync(process.execPath, [__filename, '--child', '--dir', dataDir, '--state', path.join(stateDir, mode), '--heap', heap], {
      encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
      env: {
        ...process.env, WAREHOUSE: 'bigquery', BATCH_MODE: mode, GCP_PROJECT_ID: PROJECT, GOOGLE_APPLICATION_CREDENTIALS: keyFile,
        BIGQUERY_LOCATION: 'EU', BIGQUERY_DATASET: '', LOG_LEVEL: 'warn', LOG_FORMAT: 'json',
      },
    });
    if (r.status !== 0) throw new Error(`BATCH_MODE=${mode} failed (exit ${r.status}): ${r.stderr.slice(-3000)}`);
    results[mode] = JSON.parse(r.stdout.trim().split('\n').pop()!);
  }
  const total = (m: string) => results[m].jobs.reduce((n, j) => n + Object.values(j.bytes).reduce((a, b) => a + b, 0), 0);
  const out: string[] = [];
  out.push(`ELT vs ETL on the BigQuery double: ${fmt(orders)} orders, ${fmt(sourceBytes / 1e6, 1)} MB of source files, ${os.cpus().length} cores, load average ${os.loadavg().map((n) => fmt(n, 2)).join(' ')}`);
  out.push('');
  out.push(`${'table'.padEnd(20)}${'rows in'.padStart(10)}${'rows out'.padStart(10)}${'ETL NDJSON bytes'.padStart(18)}${'ELT Parquet bytes'.padStart(19)}${'ELT/ETL'.padStart(9)}${'ETL s'.padStart(8)}${'ELT s'.padStart(8)}`);
  results.etl.jobs.forEach((e, i) => {
    const l = results.elt.jobs[i];
    if (l.rowsOut !== e.rowsOut) throw new Error(`${e.table}: ETL wrote ${e.rowsOut} rows, ELT ${l.rowsOut}`);
    const eb = e.bytes.NEWLINE_DELIMITED_JSON ?? 0;
    const lb = l.bytes.PARQUET ?? 0;
    out.push(`${e.table.padEnd(20)}${fmt(e.rowsIn).padStart(10)}${fmt(e.rowsOut).padStart(10)}${fmt(eb).padStart(18)}${fmt(lb).padStart(19)}${fmt(lb / eb, 2).padStart(9)}${fmt(e.seconds, 1).padStart(8)}${fmt(l.seconds, 1).padStart(8)}`);
  });
  out.push(`${'all jobs'.padEnd(20)}${''.padStart(20)}${fmt(total('etl')).padStart(18)}${fmt(total('elt')).padStart(19)}${fmt(total('elt') / total('etl'), 2).padStart(9)}`);
  out.push('');
  out.push(`peak RSS of the job process (with the double's Node side in it): ETL ${fmt(results.etl.peakRssMb)} MB, ELT ${fmt(results.elt.peakRssMb)} MB`);
  out.push('ETL uploads each finished table (joins done, rows widened); ELT uploads each job\'s staged sources and quarantine rows.');
  process.stdout.write(out.join('\n') + '\n');
}

if (require.main === module) {
  main(async () => {
    try {
      const v = parseCommandLine(
        process.argv.slice(2),
        {
          orders: { type: 'string' },
          dir: { type: 'string' },
          heap: { type: 'string' },
          // internal: one mode in this (child) process
          child: { type: 'boolean' },
          state: { type: 'string' },
        },
        HELP,
      );
      if (v === 'help') return 0;
      const heap = v.heap ?? '2g';
      if (v.child) {
        process.stdout.write(JSON.stringify(await measureMode(v.dir!, v.state!, heap)) + '\n');
        return 0;
      }
      const orders = v.orders === undefined ? 20_000 : Number(v.orders);
      if (!Number.isInteger(orders) || orders < 1) throw new UsageError('--orders must be a whole number >= 1');
      await bench(orders, v.dir, heap);
      return 0;
    } catch (e) {
      return reportError(e);
    }
  });
}
