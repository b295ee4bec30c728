// A table whose cells carry their column's name: on a narrow screen (an extension popup) each row becomes a
// block of "Column: value" lines (styles.css), so nothing needs sideways scrolling.
import { html } from 'htm/preact';
import type { ComponentChildren, VNode } from 'preact';

export interface Row {
  readonly key: string;
  readonly cells: ComponentChildren[];
  /** Extra attributes of the row (data-… for tests and styling). */
  readonly attrs?: Record<string, string>;
}

export function Table({
  caption,
  columns,
  rows,
  className,
}: {
  caption: string;
  columns: string[];
  rows: Row[];
  className?: string;
}): VNode {
  return html`<table class=${`stacking ${className ?? ''}`}>
    <caption class="sr-only">${caption}</caption>
    <thead><tr>${columns.map((c) => html`<th scope="col">${c}</th>`)}</tr></thead>
    <tbody>
      ${rows.map((r) => html`<tr key=${r.key} ...${r.attrs ?? {}}>${r.cells.map((cell, i) => html`<td data-label=${columns[i] ?? ''}>${cell}</td>`)}</tr>`)}
    </tbody>
  </table>`;
}
