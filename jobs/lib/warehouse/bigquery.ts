/** BigQuery adapter (production). Filled in by the production-path work. */
import type { Catalog } from '../catalog-types';
import type { Warehouse } from './types';

export class BigQueryWarehouse {
  static fromEnv(_env: NodeJS.ProcessEnv, _catalog: Catalog): Warehouse {
    throw new Error('WAREHOUSE=bigquery is not implemented yet');
  }
}
