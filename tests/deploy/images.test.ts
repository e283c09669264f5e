/**
 * Every image an Airflow DAG runs is built by docker-compose.yml from a Dockerfile in docker/,
 * and every batch destination of the catalog has its job image there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { catalog } from '../../jobs/catalog';
import { ROOT } from './env-refs';

const compose = parse(fs.readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; build?: string | { context?: string; dockerfile?: string; args?: Record<string, string> } }>;
};

/** image -> the Dockerfile compose builds it from. */
const built = new Map<string, string>();
for (const s of Object.values(compose.services)) {
  if (!s.image || !s.build) continue;
  const b = typeof s.build === 'string' ? { context: s.build } : s.build;
  built.set(s.image, path.join(b.context ?? '.', b.dockerfile ?? 'Dockerfile'));
}

/** Images named in the DAG files: `image="..."`, `IMAGE = "..."` (the generated DAGs' constant). */
function dagImages(): { file: string; image: string }[] {
  const dir = path.join(ROOT, 'dags');
  const out: { file: string; image: string }[] = [];
  for (const f of fs.existsSync(dir) ? fs.readdirSync(dir).filter((x) => x.endsWith('.py')) : []) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of text.matchAll(/\b(?:image|IMAGE)\s*[=:]\s*f?["']([^"'{}\s]+)["']/g)) out.push({ file: `dags/${f}`, image: m[1] });
  }
  return out;
}

describe('images', () => {
  const refs = dagImages();

  test('the DAGs name images (the scan finds them)', () => {
    expect(refs.length).toBeGreaterThan(0);
  });

  test.each(refs.map((r) => [r.file, r.image]))('%s runs %s, which compose builds from docker/', (_file, image) => {
    const dockerfile = built.get(image);
    expect({ image, builtBy: dockerfile ?? null }).toEqual({ image, builtBy: expect.stringMatching(/^docker\//) });
    expect(fs.existsSync(path.join(ROOT, dockerfile!))).toBe(true);
  });

  test('every batch destination has its job image, built with TABLE=<table>', () => {
    for (const d of catalog.destinations.filter((x) => x.mode === 'batch')) {
      expect({ table: d.table, dockerfile: built.get(`store-etl/${d.table}:latest`) }).toEqual({ table: d.table, dockerfile: 'docker/job.Dockerfile' });
      const svc = Object.values(compose.services).find((s) => s.image === `store-etl/${d.table}:latest`)!;
      expect((svc.build as { args?: Record<string, string> }).args?.TABLE).toBe(d.table);
    }
  });

  test('dbt_dag runs the dbt image', () => {
    expect(refs).toContainEqual({ file: 'dags/dbt_dag.py', image: 'store-etl/dbt:latest' });
    expect(built.get('store-etl/dbt:latest')).toBe('docker/dbt.Dockerfile');
  });
});
