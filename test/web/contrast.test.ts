// Readable contrast: the colour pairs of the page's light and dark schemes (web/src/styles.css) meet WCAG AA for
// text, 4.5:1, computed with WCAG 2's relative luminance.
import { readFileSync } from 'node:fs';
import t from 'tap';

const css = readFileSync(new URL('../../web/src/styles.css', import.meta.url), 'utf8');
const darkAt = css.indexOf('@media (prefers-color-scheme: dark)');

function scheme(block: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const m of block.matchAll(/--([\w-]+):\s*(#[0-9a-f]{6});/gi)) vars[m[1] as string] = m[2] as string;
  return vars;
}

function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5]
    .map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

const ratio = (a: string, b: string) => {
  const [x, y] = [luminance(a), luminance(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
};

// foreground, background: every pair the stylesheet puts together
const pairs: [string, string][] = [
  ['text', 'card'],
  ['text', 'bg'],
  ['muted', 'card'],
  ['muted', 'bg'],
  ['accent', 'card'],
  ['accent-text', 'accent'],
  ['danger', 'card'],
  ['ok', 'card'],
  ['warn-text', 'warn-bg'],
];

for (const [name, block] of [
  ['light', css.slice(0, darkAt)],
  ['dark', css.slice(darkAt)],
] as const) {
  t.test(`${name} scheme`, async (t) => {
    const v = scheme(block);
    for (const [fg, bg] of pairs) {
      const a = v[fg];
      const b = v[bg];
      if (!a || !b) {
        t.fail(`--${fg} or --${bg} is not a #rrggbb colour in the ${name} scheme`);
        continue;
      }
      t.ok(ratio(a, b) >= 4.5, `--${fg} on --${bg}: ${ratio(a, b).toFixed(2)}:1`);
    }
  });
}
