/** SQL literals shared by the warehouses and the batch stages (identifiers: ddl.ts quoteIdent). */

/**
 * Any text as SQL: a quoted literal; text holding NUL, which no literal can hold, as the
 * parenthesised concatenation of its parts with chr(0).
 */
export const sqlString = (s: string): string => {
  const literal = (part: string) => `'${part.replace(/'/g, "''")}'`;
  return s.includes('\u0000') ? `(${s.split('\u0000').map(literal).join(' || chr(0) || ')})` : literal(s);
};

/** 'YYYY-MM-DD HH:MM:SS.mmm' in UTC, for TIMESTAMP columns. */
export const utcTimestamp = (d: Date): string => d.toISOString().replace('T', ' ').replace('Z', '');

/** A GoogleSQL (BigQuery) identifier in backticks; a backtick in a name, which the catalog never has, is dropped. */
export const bqIdent = (name: string): string => `\`${name.replace(/`/g, '')}\``;
