#!/usr/bin/env node
/**
 * The checks of the compose smoke test (scripts/compose-smoke.sh drives the stack and calls these):
 *
 *   node dist/scripts/compose-smoke.js airflow-ready              health of every Airflow component, DAGs parsed
 *   node dist/scripts/compose-smoke.js run-dags OUT.json          batch DAGs + dbt_dag through the REST API, wait for success
 *   node dist/scripts/compose-smoke.js runs OUT.json              run history (dag, run id, state) of the stack
 *   node dist/scripts/compose-smoke.js stream OUT.json            topic end offsets once the consumer caught up
 *   node dist/scripts/compose-smoke.js warehouse OUT.json         row counts of the DuckDB warehouse (stack stopped)
 *   node dist/scripts/compose-smoke.js same A.json B.json WHAT [KEY]  the two snapshots (or their KEY parts) are equal
 *   node dist/scripts/compose-smoke.js ports PS_JSON              published ports on 127.0.0.1 only (and unreachable elsewhere)
 *   node dist/scripts/compose-smoke.js engine-proxy SOCKET IMAGE STATE_DIR  socket-proxy refuses what a job must not do
 *   node dist/scripts/compose-smoke.js same-stream A.duckdb B.duckdb  stream tables equal row for row (disturbed vs reference)
 *   node dist/scripts/compose-smoke.js trigger DAG OUT            unpause DAG and trigger a run (its id to OUT)
 *   node dist/scripts/compose-smoke.js hold-warehouse RELEASE     keep writers out of the warehouse until RELEASE is deleted
 *   node dist/scripts/compose-smoke.js retried DAG RUN_ID EPOCH   the run succeeded with a new try started <= 120 s after EPOCH
 *
 * Env: AIRFLOW_PORT, AIRFLOW_ADMIN_USER, AIRFLOW_ADMIN_PASSWORD, BOOTSTRAP_SERVER (the published
 * broker), TOPIC_NAME, TOPIC_GROUP, ETL_STATE_DIR / DUCKDB_PATH, ETL_SOURCE_DIR.
 * Each command exits 0 when its check holds, 1 with the reason otherwise. Expected counts come
 * from the source files (lines), never from the runs themselves.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Kafka, logLevel } from 'kafkajs';
import { catalog } from '../jobs/catalog';
import { loadConfig, streamFileSettings, streamSettings } from '../jobs/lib/config';
import { checkEngineProxy, engineCalls } from './lib/engine-proxy';
import { airflowReady, api, BATCH_DAGS, type DagRun, runsOf, settle, setPaused, taskReport, trigger } from './lib/airflow-rest';
import { check, say, sleep, until } from './lib/smoke-check';

/** The batch DAG triggered through the API (the others run on their schedule once unpaused). */
const TRIGGERED = 'dim_vendors_dag';

async function runDags(out: string): Promise<void> {
  await airflowReady();
  // Unpausing a scheduled DAG makes the scheduler start its latest interval; the one triggered
  // through the API runs as well (the warehouse pool runs one task at a time).
  for (const id of BATCH_DAGS) await setPaused(id, false);
  // The scheduled runs exist before the manual one is triggered, so that no run appears after
  // the DAGs are settled below (it would change the history between the snapshots).
  await until('the scheduled runs of the unpaused DAGs', 180_000, async () => {
    const none = [];
    for (const id of BATCH_DAGS) if ((await runsOf(id)).length === 0) none.push(id);
    if (none.length) throw new Error(`no run yet: ${none.join(', ')}`);
    return true;
  });
  const manual = await trigger(TRIGGERED);
  for (const id of BATCH_DAGS) {
    const runs = await settle(id, 900_000);
    say(`${id}: ${runs.length} run(s), all success`);
  }
  const mine = (await runsOf(TRIGGERED)).find((r) => r.dag_run_id === manual.dag_run_id);
  check(mine?.state === 'success' && mine.run_type === 'manual', `the triggered run ${manual.dag_run_id} is ${mine?.state ?? 'missing'}`);
  await setPaused('dbt_dag', false);
  const dbt = await trigger('dbt_dag');
  const dbtRuns = await settle('dbt_dag', 900_000);
  check(dbtRuns.some((r) => r.dag_run_id === dbt.dag_run_id), 'dbt_dag: the triggered run is missing');
  // Paused again: nothing new is scheduled between the snapshots of the restarts.
  for (const id of [...BATCH_DAGS, 'dbt_dag']) await setPaused(id, true);
  await writeRuns(out);
}

// ------------------------------------------------------------------------------------ chaos
/**
 * Holds the warehouse file open read-only (a writer cannot open it meanwhile, so a batch job
 * waits in its lock retries) until `release` is deleted; `release`.held tells that it holds.
 */
async function holdWarehouse(release: string): Promise<void> {
  await withWarehouse(async () => {
    fs.writeFileSync(`${release}.held`, String(process.pid));
    while (fs.existsSync(release)) await sleep(200);
  });
  fs.rmSync(`${release}.held`, { force: true });
}

/** Unpauses dagId and triggers a run of it; writes the run id to `out`. */
async function triggerOne(dagId: string, out: string): Promise<void> {
  await airflowReady();
  await setPaused(dagId, false);
  const run = await trigger(dagId);
  fs.writeFileSync(out, run.dag_run_id);
}

/**
 * After the scheduler was killed (at epoch second `killedAt`) while the run's task ran: the run
 * succeeds, its task took a new try, and that try started within 2 minutes of the kill.
 */
async function retried(dagId: string, runId: string, killedAt: number): Promise<void> {
  const p = `/dags/${dagId}/dagRuns/${encodeURIComponent(runId)}`;
  const run = await until(`${dagId} ${runId} to finish after the scheduler's restart`, 900_000, async () => {
    const r = await api<DagRun>(p);
    return r.state === 'success' || r.state === 'failed' ? r : undefined;
  });
  await setPaused(dagId, true);
  check(run.state === 'success', `${dagId} ${runId} is ${run.state} after the scheduler was killed\n${await taskReport(run)}`);
  const tis = (await api<{ task_instances: { task_id: string; try_number: number; start_date: string }[] }>(`${p}/taskInstances`)).task_instances;
  check(tis.length === 1, `expected one task in ${dagId}, got ${tis.length}`);
  const [ti] = tis;
  const startedAfter = (Date.parse(ti.start_date) - killedAt * 1000) / 1000;
  check(ti.try_number >= 2, `${ti.task_id} ran ${ti.try_number} time(s): the try the scheduler's death interrupted was not replaced`);
  check(startedAfter > 0 && startedAfter <= 120, `${ti.task_id}'s try ${ti.try_number} started ${startedAfter.toFixed(0)} s after the kill (at most 120 s)`);
  say(`${dagId}: try ${ti.try_number} started ${startedAfter.toFixed(0)} s after the scheduler was killed, run ${run.state}`);
}

async function writeRuns(out: string): Promise<void> {
  const all: DagRun[] = [];
  for (const id of [...BATCH_DAGS, 'dbt_dag']) all.push(...(await runsOf(id)));
  const rows = all.map((r) => `${r.dag_id} ${r.dag_run_id} ${r.state}`).sort();
  check(rows.length >= BATCH_DAGS.length + 1, `only ${rows.length} runs in the history`);
  fs.writeFileSync(out, JSON.stringify(rows, null, 1));
  say(`run history: ${rows.length} runs, ${rows.filter((r) => r.endsWith(' success')).length} successful`);
}

// ------------------------------------------------------------------------------------ files
const sourceDir = loadConfig().sourceDir;
/** Data rows of a source file: its non-empty lines minus the header (counted, not parsed). */
function dataRows(source: string): number {
  const s = catalog.sources.find((x) => x.name === source);
  if (!s) throw new Error(`no source ${source} in the catalog`);
  const lines = fs.readFileSync(path.join(sourceDir, s.file), 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  return lines.length - 1;
}

// ------------------------------------------------------------------------------------ Kafka
async function streamSnapshot(out: string): Promise<void> {
  const { topicPrefix: prefix, group, brokers } = streamSettings();
  const kafka = new Kafka({ clientId: 'compose-smoke', brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  // The broker may still be restarting (the chaos phase SIGKILLs it): wait for it to answer.
  await until('the broker to answer', 180_000, async () => {
    await admin.connect();
    return true;
  });
  try {
    const streamSources = catalog.destinations.filter((d) => d.mode === 'stream').map((d) => d.sources[0]);
    const sourceTopics = streamSources.map((s) => `${prefix}_${s}`);
    // Every event of the stream files was produced exactly once: end offsets = data rows.
    const expected = Object.fromEntries(streamSources.map((s) => [`${prefix}_${s}`, dataRows(s)]));
    const ends = async (topic: string) => (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
    const produced: Record<string, number> = {};
    for (const t of sourceTopics) produced[t] = await ends(t);
    check(JSON.stringify(produced) === JSON.stringify(expected), `events in the source topics ${JSON.stringify(produced)}, expected one per data row ${JSON.stringify(expected)}`);
    // The consumer applied everything: the offsets stored with the rows in the warehouse (the
    // authoritative ones; its Kafka group commit is best effort) reach the end of every partition.
    await until(`consumer group ${group} to catch up`, 300_000, async () => {
      // The consumer holds the stream file: its offsets are read from the snapshot it publishes.
      const stored = await withWarehouse((c) => rows(c, `SELECT topic, partition, next_offset FROM store._stream_offsets WHERE consumer_group = '${group.replace(/'/g, "''")}'`), streamSnapshotFile());
      let behind = 0;
      for (const t of sourceTopics) {
        for (const p of await admin.fetchTopicOffsets(t)) {
          const at = stored.find((r) => r[0] === t && Number(r[1]) === p.partition);
          behind += Number(p.high) - (at ? Number(at[2]) : 0);
        }
      }
      if (behind > 0) throw new Error(`${behind} events not applied to the warehouse yet`);
      return true;
    });
    // End offsets to compare across restarts: the source topics (the producer's events) and every
    // topic of the stack (the consumer's derived ones too: dead letters, vendor availability, which
    // a consumer start legitimately adds to when a batch load changed stock since its last run).
    const all: Record<string, number> = {};
    for (const t of (await admin.listTopics()).filter((x) => x.startsWith(`${prefix}_`)).sort()) all[t] = await ends(t);
    fs.writeFileSync(out, JSON.stringify({ source: produced, all }, null, 1));
    say(`topics: ${JSON.stringify(all)}; consumer caught up`);
  } finally {
    await admin.disconnect();
  }
}

// ------------------------------------------------------------------------------------ engine proxy (lib/engine-proxy.ts)
async function engineProxy(socket: string, image: string, stateDir: string): Promise<void> {
  const failures = await checkEngineProxy(socket, image, stateDir);
  check(failures.length === 0, `socket-proxy let through or refused the wrong calls:\n  ${failures.join('\n  ')}`);
  say(`socket-proxy: ${engineCalls(image, stateDir, 'x').filter((c) => c.expect === 'refused').length} calls refused, the job's calls allowed`);
}

// ------------------------------------------------------------------------------------ ports
/** A TCP connect to host:port: true when something accepts it within 3 s. */
function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('timeout', () => { s.destroy(); resolve(false); });
    s.on('error', () => resolve(false));
  });
}

/**
 * Every published port is bound to 127.0.0.1 (`docker compose ps --format json` in PS_JSON) and
 * answers there but not on this machine's other addresses.
 */
async function ports(psJson: string): Promise<void> {
  const text = fs.readFileSync(psJson, 'utf8').trim();
  // One JSON array, or one object per line, depending on the CLI version.
  const list = (text.startsWith('[') ? JSON.parse(text) : text.split('\n').filter(Boolean).map((l) => JSON.parse(l))) as { Service: string; Publishers?: { URL: string; PublishedPort: number }[] }[];
  const published = list.flatMap((c) => (c.Publishers ?? []).filter((p) => p.PublishedPort > 0).map((p) => ({ service: c.Service, ...p })));
  check(published.length >= 2, `expected Airflow's and Kafka's published ports, found ${JSON.stringify(published)}`);
  const open = published.filter((p) => p.URL !== '127.0.0.1');
  check(open.length === 0, `ports published beyond the loopback: ${JSON.stringify(open)}`);
  const others = Object.values(os.networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address);
  for (const p of published) {
    check(await reachable('127.0.0.1', p.PublishedPort), `${p.service}: 127.0.0.1:${p.PublishedPort} does not answer`);
    for (const addr of others) check(!(await reachable(addr, p.PublishedPort)), `${p.service}: ${addr}:${p.PublishedPort} answers (only the loopback should)`);
  }
  say(`ports: ${published.map((p) => `${p.service} 127.0.0.1:${p.PublishedPort}`).join(', ')}; not reachable on ${others.join(', ') || '(no other address)'}`);
}

// ------------------------------------------------------------------------------------ warehouse
type Conn = Awaited<ReturnType<DuckDBInstance['connect']>>;
const rows = async (c: Conn, sql: string) => (await (await c.run(sql)).getRows()) as unknown[][];

/** The stream layer's snapshot (its own file is held by the running consumer; docs/stream.md). */
const streamSnapshotFile = () => streamFileSettings().snapshotPath;

/** Runs `fn` on a read-only open of the warehouse file (fails while a writer holds it: callers retry or stop the stack). */
async function withWarehouse<T>(fn: (c: Conn) => Promise<T>, warehouseFile?: string): Promise<T> {
  const file = warehouseFile ?? loadConfig().duckdbPath;
  check(fs.existsSync(file), `no warehouse at ${file}`);
  const instance = await DuckDBInstance.create(file, { access_mode: 'READ_ONLY' });
  const c = await instance.connect();
  try {
    return await fn(c);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

async function warehouse(out: string): Promise<void> {
  await withWarehouse(async (c) => {
    const one = async (sql: string): Promise<number> => Number((await rows(c, sql))[0][0]);
    const counts: Record<string, number> = {};
    for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) counts[`${d.dataset}.${d.table}`] = await one(`SELECT count(*) FROM ${d.dataset}.${d.table}`);
    // Stream tables: in the stream layer's file, read through its snapshot.
    await withWarehouse(async (s) => {
      for (const d of catalog.destinations.filter((x) => x.mode === 'stream')) {
        counts[`${d.dataset}.${d.table}`] = Number((await rows(s, `SELECT count(*) FROM ${d.dataset}.${d.table}`))[0][0]);
      }
    }, streamSnapshotFile());
    const marts = (await rows(c, `SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema LIKE '%marts' ORDER BY 1`)).map((r) => String(r[0]));
    for (const m of marts) counts[m] = await one(`SELECT count(*) FROM ${m}`);
    // dim_vendors is one row per vendor line: rows in = rows loaded + rows quarantined.
    const quarantined = await one(`SELECT count(*) FROM store._quarantine WHERE destination IN ('dim_vendors', 'store.dim_vendors')`);
    check(counts['store.dim_vendors'] + quarantined === dataRows('vendor'), `store.dim_vendors ${counts['store.dim_vendors']} + ${quarantined} quarantined != ${dataRows('vendor')} lines of vendor data`);
    const empty = Object.entries(counts).filter(([, n]) => n === 0).map(([t]) => t);
    check(empty.length === 0, `empty tables: ${empty.join(', ')}`);
    check(marts.length >= 3, `dbt marts missing: found ${marts.join(', ') || 'none'}`);
    fs.writeFileSync(out, JSON.stringify(counts, null, 1));
    say(`warehouse: ${JSON.stringify(counts)}`);
  });
}

/**
 * The stream tables of two stream-layer files are equal row for row (columns holding wall-clock
 * times, when the stream wrote a row, left out): a disturbed run against an undisturbed one.
 */
async function sameStream(a: string, b: string): Promise<void> {
  const instance = await DuckDBInstance.create(':memory:');
  const c = await instance.connect();
  try {
    await c.run(`ATTACH '${a.replace(/'/g, "''")}' AS x (READ_ONLY)`);
    await c.run(`ATTACH '${b.replace(/'/g, "''")}' AS y (READ_ONLY)`);
    const tables = (await rows(c, `SELECT DISTINCT table_name FROM information_schema.tables WHERE table_catalog = 'y' AND table_schema = 'store' AND table_name NOT LIKE '\\_%' ESCAPE '\\' ORDER BY 1`)).map((r) => String(r[0]));
    const streamTables = catalog.destinations.filter((d) => d.mode === 'stream').map((d) => d.table);
    check(streamTables.every((t) => tables.includes(t)), `the reference lacks stream tables: has ${tables.join(', ')}`);
    const diffs: string[] = [];
    const summary: string[] = [];
    for (const t of tables) {
      const cols = (await rows(c, `SELECT column_name FROM information_schema.columns WHERE table_catalog = 'y' AND table_schema = 'store' AND table_name = '${t}' AND data_type NOT LIKE 'TIMESTAMP%' ORDER BY ordinal_position`)).map((r) => `"${String(r[0])}"`).join(', ');
      const n = async (db: string) => Number((await rows(c, `SELECT count(*) FROM ${db}.store.${t}`))[0][0]);
      const only = async (p: string, q: string) => Number((await rows(c, `SELECT count(*) FROM (SELECT ${cols} FROM ${p}.store.${t} EXCEPT ALL SELECT ${cols} FROM ${q}.store.${t})`))[0][0]);
      const [nx, ny, ox, oy] = [await n('x'), await n('y'), await only('x', 'y'), await only('y', 'x')];
      if (nx !== ny || ox || oy) diffs.push(`store.${t}: ${nx} rows against ${ny}, ${ox} only in the disturbed run, ${oy} only in the reference`);
      summary.push(`${t} ${ny}`);
    }
    check(diffs.length === 0, `stream tables differ from the undisturbed run:\n  ${diffs.join('\n  ')}`);
    say(`stream tables equal the undisturbed run row for row: ${summary.join(', ')}`);
  } finally {
    c.closeSync();
    instance.closeSync();
  }
}

/** The two JSON snapshots are equal (or their `key` parts only). */
function same(a: string, b: string, what: string, key?: string): void {
  const part = (f: string) => {
    const v = JSON.parse(fs.readFileSync(f, 'utf8'));
    return JSON.stringify(key ? v[key] : v, null, 1);
  };
  const x = part(a);
  const y = part(b);
  check(x === y, `${what} changed:\n  before ${x.replace(/\s+/g, ' ')}\n  after  ${y.replace(/\s+/g, ' ')}`);
  say(`${what}: unchanged`);
}

const USAGE = 'usage: compose-smoke.js airflow-ready | run-dags OUT | runs OUT | stream OUT | warehouse OUT | same A B WHAT [KEY] | ports PS_JSON | engine-proxy SOCKET IMAGE STATE_DIR | same-stream DISTURBED.duckdb REFERENCE.duckdb | trigger DAG OUT | hold-warehouse RELEASE_FILE | retried DAG RUN_ID KILLED_AT';

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  try {
    switch (cmd) {
      case 'airflow-ready': await airflowReady(); break;
      case 'run-dags': await runDags(args[0]); break;
      case 'runs': await airflowReady(); await writeRuns(args[0]); break;
      case 'stream': await streamSnapshot(args[0]); break;
      case 'warehouse': await warehouse(args[0]); break;
      case 'same': same(args[0], args[1], args[2] ?? 'snapshot', args[3]); break;
      case 'ports': await ports(args[0]); break;
      case 'same-stream': await sameStream(args[0], args[1]); break;
      case 'trigger': await triggerOne(args[0], args[1]); break;
      case 'hold-warehouse': await holdWarehouse(args[0]); break;
      case 'retried': await airflowReady(); await retried(args[0], args[1], Number(args[2])); break;
      case 'engine-proxy': await engineProxy(args[0], args[1], args[2]); break;
      case '-h': case '--help': process.stdout.write(`${USAGE}\n`); return 0;
      default: process.stderr.write(`${USAGE}\n`); return 64;
    }
    return 0;
  } catch (e) {
    process.stderr.write(`[compose-smoke] FAIL ${cmd}: ${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) void main(process.argv.slice(2)).then((code) => process.exit(code));
