/**
 * A transform whose rows repeat the destination key fails the job, and the warehouse keeps the
 * table it had: the check that runs when the SQL does not prove the key (key-proof.ts).
 * dim_products, given the key product_id alone, repeats it once per extra option.
 */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { Catalog } from '../../jobs/lib/catalog-types';
import { loadConfig } from '../../jobs/lib/config';
import { runBatchJob } from '../../jobs/lib/pipeline';
import { generate } from '../../scripts/generate-data';
import { count, query, tempDir } from '../helpers/env';

jest.setTimeout(120_000);

test('dim_products keyed by product_id alone: the job fails with the repeated keys counted, the table stays', async () => {
  const sourceDir = tempDir('tk-src');
  const stateDir = tempDir('tk-state');
  await generate({ orders: 500, out: sourceDir, seed: 7, faults: false, faultRate: 0 });
  const config = loadConfig({}, { sourceDir, stateDir, batchPath: 'bulk' });
  const good = await runBatchJob(catalog, 'dim_products', config);
  const db = path.join(stateDir, 'warehouse.duckdb');
  expect(await count(db, 'store.dim_products')).toBe(good.run.rowsOut);

  // Expected, from the files: products (of products.txt) with two or more option rows.
  const column = (file: string, name: string) => {
    const [header, ...lines] = fs.readFileSync(path.join(sourceDir, file), 'utf8').split('\n').filter((l) => l !== '');
    const i = header.split('\t').indexOf(name);
    return lines.map((l) => l.split('\t')[i]);
  };
  const products = new Set(column('products.txt', 'product_id'));
  const options = new Map<string, number>();
  for (const p of column('products_has_options.txt', 'product_id')) options.set(p, (options.get(p) ?? 0) + 1);
  const repeated = [...options].filter(([p, n]) => products.has(p) && n > 1).length;
  expect(repeated).toBeGreaterThan(0);

  const wrongKey: Catalog = {
    ...catalog,
    destinations: catalog.destinations.map((d) => (d.name === 'store.dim_products' ? { ...d, key: ['product_id'] } : d)),
  };
  await expect(runBatchJob(wrongKey, 'dim_products', config)).rejects.toThrow(
    `transform dim_products produced ${repeated} duplicate keys (product_id)`,
  );
  expect(await count(db, 'store.dim_products')).toBe(good.run.rowsOut);
  const runs = await query(db, "SELECT status FROM store._etl_runs WHERE destination = 'store.dim_products' ORDER BY started_at");
  expect(runs.map((r) => r[0])).toEqual(['success', 'failed']);
});
