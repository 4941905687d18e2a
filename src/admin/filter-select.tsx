import type { FC } from 'hono/jsx';

/** One choice of a list filter: the value sent, and the text shown. */
export type FilterOption = { value: string; text: string };

/**
 * A list page's filter: a labelled `<select>` whose first choice (`all`, empty value) sets no
 * filter, with the current one selected. Texts are escaped by JSX like any other.
 */
export const FilterSelect: FC<{ label: string; name: string; all?: string | undefined; options: FilterOption[]; selected: string | number | undefined }> = ({
  label,
  name,
  all,
  options,
  selected,
}) => (
  <label>
    {label}
    <select name={name}>
      {all !== undefined ? <option value="">{all}</option> : null}
      {options.map((o) => (
        <option value={o.value} selected={o.value === (selected === undefined ? undefined : String(selected))}>
          {o.text}
        </option>
      ))}
    </select>
  </label>
);
