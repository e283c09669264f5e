/**
 * Whether a transform's SQL, as DuckDB itself parses it, proves its result unique on the
 * destination key, so that the job need not look for repeated keys in the rows it wrote.
 *
 * The proof: the query is one plain SELECT (no set operation, CTE, WHERE, GROUP BY, HAVING,
 * QUALIFY, modifier, sample or unnest) FROM one staged source G, LEFT JOINed only to staged
 * sources, each on equalities that cover that source's whole key; and the destination's key
 * columns are G's key columns, selected as they are. Staging leaves every source unique on its
 * key (later repeats are quarantined), so each joined source matches a row of G at most once and
 * a LEFT JOIN keeps every row of G: one result row per row of G, each with G's (unique) key.
 * Anything else is not proven, and the job checks the rows (assertKeyUnique).
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import type { BatchDestination, SourceTable } from './catalog-types';
import { stagingTableName } from './ddl';
import { sqlString } from './sql/quote';

// The parts of DuckDB's serialized parse tree (json_serialize_sql) that the proof reads.
interface Expr {
  readonly class: string;
  readonly type: string;
  readonly alias?: string;
  readonly column_names?: readonly string[];
  readonly children?: readonly Expr[];
  readonly left?: Expr;
  readonly right?: Expr;
}
interface TableRef {
  readonly type: string;
  readonly alias: string;
  readonly sample: unknown;
  readonly schema_name?: string;
  readonly catalog_name?: string;
  readonly table_name?: string;
  readonly at_clause?: unknown;
  readonly left?: TableRef;
  readonly right?: TableRef;
  readonly condition?: Expr | null;
  readonly join_type?: string;
  readonly ref_type?: string;
  readonly using_columns?: readonly string[];
}
interface SelectNode {
  readonly type: string;
  readonly modifiers: readonly unknown[];
  readonly cte_map: { readonly map: readonly unknown[] };
  readonly select_list: readonly Expr[];
  readonly from_table: TableRef;
  readonly where_clause: unknown;
  readonly group_expressions: readonly unknown[];
  readonly group_sets: readonly unknown[];
  readonly having: unknown;
  readonly sample: unknown;
  readonly qualify: unknown;
}

/** A staged source in the FROM clause, by the name its columns are qualified with. */
interface Joined {
  readonly alias: string;
  readonly source: SourceTable;
}

export async function transformKeepsSourceKey(
  c: DuckDBConnection,
  dest: BatchDestination,
  sources: readonly SourceTable[],
  sql: string,
): Promise<boolean> {
  let tree: { error: boolean; statements?: { node: SelectNode }[] };
  try {
    const r = await c.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})`);
    tree = JSON.parse(String(r.getRowsJS()[0][0]));
  } catch {
    return false; // not proven: the job checks the rows
  }
  if (tree.error || tree.statements?.length !== 1) return false;
  return provesKey(tree.statements[0].node, dest, sources);
}

function provesKey(n: SelectNode, dest: BatchDestination, sources: readonly SourceTable[]): boolean {
  const plain = n.type === 'SELECT_NODE' && n.modifiers.length === 0 && n.cte_map.map.length === 0 && n.where_clause === null &&
    n.group_expressions.length === 0 && n.group_sets.length === 0 && n.having === null && n.sample === null && n.qualify === null;
  // unnest() in the select list is the one expression that makes rows.
  if (!plain || /"function_name":"unnest"/i.test(JSON.stringify(n.select_list))) return false;
  const staged = new Map(sources.map((s) => [stagingTableName(s), s]));
  const joined: Joined[] = [];
  if (!leftJoinChain(n.from_table, staged, joined)) return false;
  const base = joined[0];
  // Each destination key column: a column of the base source's key, selected as it is.
  const keyOf = (name: string): string | null => {
    const e = n.select_list.find((x) => (x.alias || x.column_names?.[x.column_names.length - 1]) === name);
    const names = e?.class === 'COLUMN_REF' ? e.column_names! : null;
    if (names === null) return null;
    if (names.length === 2 && names[0] === base.alias) return names[1];
    return names.length === 1 && joined.length === 1 ? names[0] : null;
  };
  const picked = dest.key.map(keyOf);
  return picked.every((k) => k !== null) && new Set(picked).size === base.source.key.length &&
    base.source.key.every((k) => picked.includes(k));
}

/** FROM base LEFT JOIN s1 ON ... LEFT JOIN s2 ON ...: collects the sources, base first. */
function leftJoinChain(t: TableRef, staged: ReadonlyMap<string, SourceTable>, out: Joined[]): boolean {
  if (t.type === 'BASE_TABLE') {
    const source = staged.get(t.table_name ?? '');
    if (!source || t.schema_name || t.catalog_name || t.sample !== null || t.at_clause) return false;
    out.push({ alias: t.alias || t.table_name!, source });
    return true;
  }
  if (t.type !== 'JOIN' || t.join_type !== 'LEFT' || t.ref_type !== 'REGULAR' || (t.using_columns?.length ?? 0) > 0) return false;
  if (!t.left || !t.right || !leftJoinChain(t.left, staged, out) || t.right.type !== 'BASE_TABLE') return false;
  if (!leftJoinChain(t.right, staged, out)) return false;
  const right = out[out.length - 1];
  const earlier = new Set(out.slice(0, -1).map((j) => j.alias));
  // The joined source's columns the condition pins: each equal to a column of a source before it.
  const pinned = new Set<string>();
  const ref = (e: Expr | undefined): readonly string[] => (e?.class === 'COLUMN_REF' && e.column_names?.length === 2 ? e.column_names : []);
  const equalities = (e: Expr | null | undefined): boolean => {
    if (!e) return false;
    if (e.class === 'CONJUNCTION' && e.type === 'CONJUNCTION_AND') return (e.children ?? []).every(equalities);
    if (e.class !== 'COMPARISON' || e.type !== 'COMPARE_EQUAL') return false;
    const [a, b] = [ref(e.left), ref(e.right)];
    const [mine, other] = a[0] === right.alias ? [a, b] : [b, a];
    if (mine[0] !== right.alias || !earlier.has(other[0])) return false;
    pinned.add(mine[1]);
    return true;
  };
  return equalities(t.condition) && right.source.key.every((k) => pinned.has(k));
}
