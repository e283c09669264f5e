/** Picks the warehouse adapter from configuration (WAREHOUSE=duckdb|bigquery). */
import type { Catalog } from '../catalog-types';
import type { EtlConfig } from '../config';
import { DuckDbWarehouse } from './duckdb/warehouse';
import type { Warehouse } from './types';

export async function openWarehouse(config: EtlConfig, catalog: Catalog): Promise<Warehouse> {
  switch (config.warehouse) {
    case 'duckdb':
      // The batch file: its tables only (the stream layer has a file of its own, STREAM_DUCKDB_PATH).
      return new DuckDbWarehouse({ path: config.duckdbPath, lockRetries: config.duckdbLockRetries, catalog, destinations: (d) => d.mode === 'batch' });
    case 'bigquery': {
      // Loaded lazily so the embedded default never pays for the cloud client.
      const { BigQueryWarehouse } = await import('./bigquery/warehouse');
      return BigQueryWarehouse.fromEnv(undefined, catalog);
    }
  }
}
