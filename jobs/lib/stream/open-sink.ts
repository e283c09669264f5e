/** The stream sink WAREHOUSE picks: DuckDB's own stream file, or the BigQuery adapter. */
import type { Catalog } from '../catalog-types';
import type { EtlConfig } from '../config';
import { streamDuckDbWarehouse, type DuckDbWarehouse } from '../warehouse/duckdb/warehouse';
import type { Warehouse } from '../warehouse/types';
import type { StreamConfig } from './config';
import { bigQuerySink } from './sink-bigquery';
import { duckDbSink } from './sink-duckdb';
import type { SinkFactory } from './sink';

export interface OpenedSink {
  readonly sink: SinkFactory;
  /** To close when the consumer stopped. */
  readonly warehouse: Warehouse;
  /** The DuckDB stream file (its tables can be read after the consumer stopped), else null. */
  readonly streamFile: DuckDbWarehouse | null;
}

export async function openStreamSink(etl: EtlConfig, cfg: StreamConfig, catalog: Catalog): Promise<OpenedSink> {
  switch (etl.warehouse) {
    case 'duckdb': {
      // The stream layer's own file, held by this process until it stops.
      const wh = streamDuckDbWarehouse(cfg.duckdbPath, catalog, cfg.duckdbThreads);
      return { sink: duckDbSink(wh), warehouse: wh, streamFile: wh };
    }
    case 'bigquery': {
      // Loaded lazily so the embedded default never pays for the cloud client.
      const { BigQueryWarehouse } = await import('../warehouse/bigquery/warehouse');
      const wh = BigQueryWarehouse.fromEnv(undefined, catalog);
      return { sink: bigQuerySink(wh), warehouse: wh, streamFile: null };
    }
  }
}
