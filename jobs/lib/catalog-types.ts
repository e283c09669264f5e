/**
 * Types of the catalog: the single source of truth for source files and destination tables.
 * Everything else (ajv schemas, warehouse DDL, DAGs, dbt sources) is derived from values of
 * these types, so a bad state (a key naming a missing column, a job naming a missing source)
 * is rejected once, at load time, by `assertCatalogConsistent`.
 */

/** How a raw source value is validated and typed before staging. */
export type SourceType =
  | 'id' //        digits only; a spreadsheet-damaged id (2.56324E+15) is quarantined
  | 'card' //      card number: 12-19 digits, spaces or hyphens between groups allowed
  | 'string'
  | 'int'
  | 'decimal'
  | 'bool01' //    0/1 flag, staged as BOOLEAN
  | 'date'; //     YYYY-MM-DD, a real calendar date

/**
 * What becomes of a PII column's value. Whatever the policy, the clear value is never written
 * anywhere (tables, quarantine raw and reason, reports, logs, dead letters):
 *  - drop:       validated, then never staged (the column does not exist downstream)
 *  - mask_last4: staged with all but the last four digits masked (************6084)
 *  - hash:       staged as the hex SHA-256 of the value (joinable, not reversible)
 */
export type PiiPolicy = 'drop' | 'mask_last4' | 'hash';

/** Business rules of one column, checked in staging (batch) and when decoding (stream). */
export interface ColumnRules {
  /** Smallest allowed value of an int/decimal column (quantity >= 1, money >= 0). */
  readonly min?: number;
  /**
   * Largest allowed value of an int/decimal column: keeps a valid-looking but absurd value
   * (a quantity of 999999999999999999) from reaching arithmetic (sums, price x quantity).
   */
  readonly max?: number;
  /** Most characters of an id column's value (a 900,000-digit identifier is not one). */
  readonly maxLength?: number;
}

export interface SourceColumn {
  readonly name: string;
  readonly type: SourceType;
  readonly pii?: PiiPolicy;
  readonly rules?: ColumnRules;
}

export interface ForeignKey {
  readonly columns: readonly string[];
  readonly references: { readonly source: string; readonly columns: readonly string[] };
}

export interface SourceTable {
  /** Logical name; staged as table `src_<name>`. */
  readonly name: string;
  readonly file: string;
  readonly delimiter: '\t' | ',';
  readonly columns: readonly SourceColumn[];
  /** Natural key: key columns are required, and later duplicates of a key are quarantined. */
  readonly key: readonly string[];
  readonly foreignKeys?: readonly ForeignKey[];
  readonly description: string;
}

/** Warehouse column types (BigQuery standard names; DuckDB equivalents in ddl.ts). */
export type ColumnType = 'STRING' | 'INT64' | 'NUMERIC' | 'BOOL' | 'DATE' | 'TIMESTAMP';

export interface DestinationColumn {
  readonly name: string;
  readonly type: ColumnType;
  readonly nullable: boolean;
  readonly description: string;
}

/** Orchestration settings; every field has a catalog-wide default (see `dagDefaults`). */
export interface DagSettings {
  readonly schedule?: string | null;
  readonly startDate?: string;
  readonly retries?: number;
  readonly retryDelayMinutes?: number;
  /** Container image of the job (default `store-etl/<table>:latest`, built from docker/job.Dockerfile). */
  readonly image?: string;
}

/**
 * What a table does with drift: a field or column its source does not declare (added), and a
 * declared nullable one that is absent (missing). Key and non-nullable columns are never
 * optional, and a value of the wrong type is quarantined, whatever the contract.
 *  - rescue (default): the row loads; added values are kept as a JSON object in the
 *    destination's `_rescued_data` column (NULL when nothing is rescued); missing -> NULL
 *  - freeze: a file with drift fails the job, an event with drift is quarantined
 *  - discard_value: the row loads; added values are dropped (and counted); missing -> NULL
 *  - discard_row: the row is quarantined (`schema_drift`) with the field named
 */
export type SchemaContract = 'rescue' | 'freeze' | 'discard_value' | 'discard_row';

export const DEFAULT_CONTRACT: SchemaContract = 'rescue';

/** The column holding rescued values (JSON text), on every destination whose contract rescues. */
export const RESCUED_DATA_COLUMN = '_rescued_data';

interface DestinationBase {
  /** Fully qualified: `<dataset>.<table>`. */
  readonly name: string;
  readonly dataset: string;
  readonly table: string;
  readonly description: string;
  readonly sources: readonly string[];
  readonly key: readonly string[];
  readonly columns: readonly DestinationColumn[];
  readonly dag?: DagSettings;
  /** Schema contract for drift in this table's sources (default `rescue`, see SchemaContract). */
  readonly contract?: SchemaContract;
}

/**
 * A destination value computed as the product of two staged values that must fit its column's
 * type (price x quantity into DECIMAL(18,4)). `source.column` is multiplied by `via.column` of
 * the row that `source`'s foreign key to `via.source` points at; a source row whose product
 * would not fit is quarantined in staging (reason `derived_out_of_range`), never an overflow
 * in the transform.
 */
export interface DerivedProductRule {
  /** The destination column holding the product. */
  readonly column: string;
  readonly source: { readonly source: string; readonly column: string };
  readonly via: { readonly source: string; readonly column: string };
}

/** Rebuilt in full by a batch job and swapped in atomically (WRITE_TRUNCATE). */
export interface BatchDestination extends DestinationBase {
  readonly mode: 'batch';
  /** Name of the transform: jobs/transforms/<transform>.sql, a SELECT over `src_<source>` tables. */
  readonly transform: string;
  readonly derived?: readonly DerivedProductRule[];
}

/** Kept current by a Kafka consumer: micro-batches upserted by key, exactly once. */
export interface StreamDestination extends DestinationBase {
  readonly mode: 'stream';
  /** The source whose events feed this table; its topic is `<TOPIC_NAME>_<table>`. */
  readonly sources: readonly [string];
}

export type DestinationTable = BatchDestination | StreamDestination;

export interface Catalog {
  readonly sources: readonly SourceTable[];
  readonly destinations: readonly DestinationTable[];
  readonly dagDefaults: Required<Omit<DagSettings, 'image'>>;
}
