import type { Child } from 'hono/jsx';

/** A column heading; `num` right-aligns it, as the numbers below it are. `false` leaves the column out. */
export type Column = string | { label: string; num?: boolean } | false;

/**
 * The admin pages' table: a heading row, then one row per item, or, when there are none, one
 * muted row across every column saying `empty` (`emptyId` names it for the live updates that
 * replace the rows, and for tests).
 */
export function DataTable<T>(props: {
  id?: string | undefined;
  columns: readonly Column[];
  items: readonly T[];
  empty: Child;
  emptyId?: string | undefined;
  row: (item: T) => Child;
}) {
  const columns = props.columns.filter((c) => c !== false);
  return (
    <table id={props.id}>
      <thead>
        <tr>{columns.map((c) => (typeof c === 'string' ? <th>{c}</th> : <th class={c.num ? 'num' : undefined}>{c.label}</th>))}</tr>
      </thead>
      <tbody>
        {props.items.length === 0 ? (
          <tr>
            <td colspan={columns.length} class="muted" id={props.emptyId}>
              {props.empty}
            </td>
          </tr>
        ) : (
          props.items.map((item) => props.row(item))
        )}
      </tbody>
    </table>
  );
}
