/**
 * Availability inside a group commit (sink-duckdb.ts): the first step of the pending products runs
 * in the commit's own transaction, so a commit at 10,000 events/s makes no second transaction and
 * no dozen round trips for it (docs/benchmarks.md). The rules and the drain: availability.ts.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { quoteIdent } from '../ddl';
import { sqlString } from '../sql/quote';
import type { SqlRunner, StatementBatch } from '../sql/statements';
import { refreshStatements, stepProductsSql } from './availability';

/** The temporary table of the step run inside a batch's transaction (availabilityStepInCommit). */
const IN_COMMIT_STEP = '_avail_step';

/** Products pending availability inside a commit: all of them, and those a step may take (not parked). */
export interface PendingInCommit {
  readonly pending: number;
  readonly steppable: number;
}

/**
 * Pending products after markAvailabilityPending, read in the commit's transaction with the
 * statements queued before it (one call). When nothing is pending (the commit touched no product
 * a vendor sells), the step's seven statements are not sent: over empty inputs they still cost
 * about 10 ms of planning and pipelines, a third of a commit at 10,000 events/s
 * (docs/benchmarks.md).
 */
export async function pendingInCommit(tx: StatementBatch, dataset: string): Promise<PendingInCommit> {
  const ds = quoteIdent(dataset);
  const [row] = await tx.query(
    `SELECT count(*) AS pending,
            count(*) FILTER (WHERE product_id NOT IN (SELECT product_id FROM ${ds}._availability_parked)) AS steppable
     FROM ${ds}._availability_pending`,
  );
  return { pending: Number(row.pending), steppable: Number(row.steppable) };
}

/**
 * The first step inside a group commit's transaction (after markAvailabilityPending), without
 * parameters so the commit stays one call: pending products (not parked) up to `maxRows` rows,
 * transitions queued as `avail:<stepId>:...`. A separate step cost a dozen round trips and a
 * second commit (docs/benchmarks.md). What it leaves is drained after the commit; if the
 * transaction fails, the caller commits again without it (the drain parks a failing product).
 */
export async function availabilityStepInCommit(
  tx: SqlRunner,
  dataset: string,
  broadcastTopic: string,
  maxRows: number,
  now: Date,
  stepId: string,
): Promise<void> {
  const ds = quoteIdent(dataset);
  await tx.run(`CREATE OR REPLACE TEMP TABLE ${IN_COMMIT_STEP} AS ${stepProductsSql(ds, maxRows, true)}`);
  const [create, ...rest] = refreshStatements(dataset, `SELECT product_id FROM ${IN_COMMIT_STEP}`, broadcastTopic, now, stepId);
  for (const sql of [create, ...rest]) await tx.run(sql);
  await tx.run(`DELETE FROM ${ds}._availability_pending WHERE product_id IN (SELECT product_id FROM ${IN_COMMIT_STEP})`);
  await tx.run(`DROP TABLE ${IN_COMMIT_STEP}`);
}

/** After a commit with availabilityStepInCommit: products still pending, the step's transitions queued, messages in the outbox. */
export async function afterStepInCommit(c: DuckDBConnection, dataset: string, stepId: string): Promise<{ pending: number; queued: number; outbox: number }> {
  const ds = quoteIdent(dataset);
  const [row] = (
    await c.runAndReadAll(
      `SELECT (SELECT count(*) FROM ${ds}._availability_pending) AS pending,
              (SELECT count(*) FILTER (WHERE starts_with(id, ${sqlString(`avail:${stepId}:`)})) FROM ${ds}._stream_outbox) AS queued,
              (SELECT count(*) FROM ${ds}._stream_outbox) AS outbox`,
    )
  ).getRowObjectsJS();
  return { pending: Number(row.pending), queued: Number(row.queued), outbox: Number(row.outbox) };
}
