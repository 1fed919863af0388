import { CompiledQuery, PostgresAdapter, type Kysely } from 'kysely';

/**
 * Statements the worker runs for every few messages (record a group sent, ack its jobs), written
 * once per dialect with the ids as one parameter, so their text never changes: Kysely compiles
 * nothing per call (a quarter of a worker's CPU went to building these queries), and the driver's
 * prepared statement is found by its text. Each answers the ids it touched.
 */
export interface HotStatement {
  run(params: { ids: readonly number[]; values: readonly unknown[] }): Promise<number[]>;
}

/**
 * A statement over a list of ids. `text` is written with `?` for each value, in order, and `{ids}`
 * for a table of the ids in a column named `value` (`id in (select value from {ids})`, or
 * `insert … select value … from {ids}`); it must end `returning id`.
 */
export function hotStatement<DB>(db: Kysely<DB>, text: string): HotStatement {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  let n = 0;
  // SQLite reads the ids from one JSON array; Postgres takes an array parameter. Values come first, then the ids.
  const withValues = text.replace(/\?/g, () => (postgres ? `$${++n}` : '?'));
  const compiled = withValues.replace('{ids}', postgres ? `unnest($${n + 1}::bigint[]) as ids(value)` : 'json_each(?)');
  return {
    async run({ ids, values }) {
      if (ids.length === 0) return [];
      const parameters = [...values, postgres ? ids : JSON.stringify(ids)];
      const result = await db.executeQuery<{ id: number | string }>(CompiledQuery.raw(compiled, parameters));
      return result.rows.map((row) => Number(row.id));
    },
  };
}
