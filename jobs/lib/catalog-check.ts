import { type Catalog, DEFAULT_CONTRACT, type DestinationTable, RESCUED_DATA_COLUMN, type SchemaContract, type SourceTable } from './catalog-types';

/**
 * Rejects a catalog whose parts disagree (a key naming a missing column, a job naming a
 * missing source, ...). Runs once when the catalog module loads, so every derived artifact
 * starts from a consistent catalog.
 */
export function assertCatalogConsistent(catalog: Catalog): Catalog {
  const problems: string[] = [];
  const sources = new Map<string, SourceTable>();
  for (const s of catalog.sources) {
    if (sources.has(s.name)) problems.push(`source ${s.name} is declared twice`);
    sources.set(s.name, s);
    const names = new Set(s.columns.map((c) => c.name));
    if (names.size !== s.columns.length) problems.push(`source ${s.name} repeats a column`);
    for (const k of s.key) {
      if (!names.has(k)) problems.push(`source ${s.name}: key column ${k} is not a column`);
      if (s.columns.find((c) => c.name === k)?.pii) problems.push(`source ${s.name}: key ${k} is PII`);
    }
    for (const c of s.columns) {
      // A card column without a policy would be staged in clear.
      if (c.type === 'card' && !c.pii) problems.push(`source ${s.name}: card column ${c.name} has no PII policy`);
      if ((c.rules?.min !== undefined || c.rules?.max !== undefined) && c.type !== 'int' && c.type !== 'decimal') {
        problems.push(`source ${s.name}: ${c.name} has a range rule but is not a number`);
      }
      if (c.rules?.min !== undefined && c.rules.max !== undefined && c.rules.min > c.rules.max) {
        problems.push(`source ${s.name}: ${c.name} has a minimum above its maximum`);
      }
      if (c.rules?.maxLength !== undefined && (c.type !== 'id' || !(Number.isInteger(c.rules.maxLength) && c.rules.maxLength > 0))) {
        problems.push(`source ${s.name}: ${c.name} has a length rule but is not an id, or the length is not a positive whole number`);
      }
      if (c.rules && c.pii) problems.push(`source ${s.name}: ${c.name} is PII: its rule would print its value`);
    }
  }
  for (const s of catalog.sources) {
    for (const fk of s.foreignKeys ?? []) {
      const target = sources.get(fk.references.source);
      if (!target) problems.push(`source ${s.name}: foreign key to unknown source ${fk.references.source}`);
      if (fk.columns.length !== fk.references.columns.length) {
        problems.push(`source ${s.name}: foreign key column counts differ`);
      }
      for (const c of fk.columns) {
        if (!s.columns.some((x) => x.name === c)) problems.push(`source ${s.name}: fk column ${c} missing`);
        if (s.columns.find((x) => x.name === c)?.pii) problems.push(`source ${s.name}: fk column ${c} is PII`);
      }
      for (const c of fk.references.columns) {
        if (target && !target.columns.some((x) => x.name === c)) {
          problems.push(`source ${s.name}: fk references missing ${target.name}.${c}`);
        }
      }
    }
  }
  const destNames = new Set<string>();
  for (const d of catalog.destinations) {
    if (destNames.has(d.name)) problems.push(`destination ${d.name} is declared twice`);
    destNames.add(d.name);
    if (d.name !== `${d.dataset}.${d.table}`) problems.push(`destination ${d.name} != dataset.table`);
    for (const s of d.sources) {
      if (!sources.has(s)) problems.push(`destination ${d.name}: unknown source ${s}`);
    }
    const cols = new Map(d.columns.map((c) => [c.name, c]));
    // The rescued column exists exactly where the contract can fill it, last, as JSON text.
    const rescued = cols.get(RESCUED_DATA_COLUMN);
    if ((contractOf(d) === 'rescue') !== (rescued !== undefined)) {
      problems.push(`destination ${d.name}: ${RESCUED_DATA_COLUMN} must be a column exactly when the contract is rescue`);
    }
    if (rescued && (rescued.type !== 'STRING' || !rescued.nullable || d.columns[d.columns.length - 1] !== rescued)) {
      problems.push(`destination ${d.name}: ${RESCUED_DATA_COLUMN} must be the last column, a nullable STRING`);
    }
    for (const s of d.sources) {
      if (sources.get(s)?.columns.some((c) => c.name === RESCUED_DATA_COLUMN)) problems.push(`source ${s}: ${RESCUED_DATA_COLUMN} is reserved`);
    }
    for (const k of d.key) {
      const c = cols.get(k);
      if (!c) problems.push(`destination ${d.name}: key column ${k} is not a column`);
    }
    for (const r of d.mode === 'batch' ? (d.derived ?? []) : []) {
      if (cols.get(r.column)?.type !== 'NUMERIC') problems.push(`destination ${d.name}: derived ${r.column} is not a NUMERIC column`);
      if (!d.sources.includes(r.source.source) || !d.sources.includes(r.via.source)) {
        problems.push(`destination ${d.name}: derived ${r.column} uses a source the job does not read`);
      }
      const src = sources.get(r.source.source);
      if (!src?.foreignKeys?.some((fk) => fk.references.source === r.via.source)) {
        problems.push(`destination ${d.name}: derived ${r.column}: ${r.source.source} has no foreign key to ${r.via.source}`);
      }
      for (const ref of [r.source, r.via]) {
        const c = sources.get(ref.source)?.columns.find((x) => x.name === ref.column);
        if (c?.type !== 'int' && c?.type !== 'decimal') problems.push(`destination ${d.name}: derived ${r.column}: ${ref.source}.${ref.column} is not a number`);
        if (c?.pii) problems.push(`destination ${d.name}: derived ${r.column}: ${ref.source}.${ref.column} is PII (its reason would show it)`);
      }
    }
  }
  if (problems.length > 0) throw new Error(`catalog is inconsistent:\n- ${problems.join('\n- ')}`);
  return catalog;
}

/** A destination's schema contract (the catalog's default when it names none). */
export const contractOf = (d: { readonly contract?: SchemaContract }): SchemaContract => d.contract ?? DEFAULT_CONTRACT;

/**
 * A destination under `contract`, with its contract's column: `_rescued_data` (JSON text; NULL
 * when nothing was rescued) last exactly when the contract is rescue. The catalog builds every
 * destination with it; tests use it to try a table under another contract.
 */
export function withContract<D extends DestinationTable>(d: D, contract: SchemaContract): D {
  const columns = d.columns.filter((c) => c.name !== RESCUED_DATA_COLUMN);
  if (contract !== 'rescue') return { ...d, contract, columns };
  const rescued = { name: RESCUED_DATA_COLUMN, type: 'STRING', nullable: true, description: 'Values of fields the catalog does not declare, as a JSON object (NULL when none).' } as const;
  return { ...d, contract, columns: [...columns, rescued] };
}

export function findSource(catalog: Catalog, name: string): SourceTable {
  const s = catalog.sources.find((x) => x.name === name);
  if (!s) throw new Error(`unknown source table '${name}'`);
  return s;
}

/** Accepts `store.fact_orders` or `fact_orders`. */
export function findDestination(catalog: Catalog, name: string): DestinationTable {
  const d = catalog.destinations.find((x) => x.name === name || x.table === name);
  if (!d) {
    const known = catalog.destinations.map((x) => x.table).join(', ');
    throw new Error(`unknown destination table '${name}' (known: ${known})`);
  }
  return d;
}

/** Source columns that may be staged (PII marked 'drop' never leaves the validator). */
export function stagedColumns(source: SourceTable) {
  return source.columns.filter((c) => c.pii !== 'drop');
}
