// Writes the configuration tables from src/config.ts, the one place the keys are declared: in README.md (between the
// config:start/end markers) every key with its default and the first words of its description, and in
// docs/configuration.md every key with its whole description. Run: npx tsx scripts/config-table.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { configKeys } from '../src/config.js';

function cell(v: unknown): string {
  if (Array.isArray(v)) return v.length ? `\`${v.join(',')}\`` : '(empty)';
  if (v === '') return '(empty)';
  return `\`${String(v)}\``;
}

/** The description's first clause, at most `max` characters, cut at a word. */
function brief(description: string, max = 64): string {
  const clause = description.split(/(?:; |\. |: | \()/)[0] ?? description;
  if (clause.length <= max) return clause;
  return `${clause.slice(0, clause.lastIndexOf(' ', max - 1))} …`;
}

function table(describe: (d: string) => string): string {
  const rows = configKeys.map((k) => `| \`${k.env}\` | ${cell(k.default)} | ${describe(k.description)} |`);
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}

function writeBetweenMarkers(file: URL, text: string): void {
  const doc = readFileSync(file, 'utf8');
  writeFileSync(
    file,
    doc.replace(
      /<!-- config:start -->[\s\S]*<!-- config:end -->/,
      `<!-- config:start -->\n${text}\n<!-- config:end -->`,
    ),
  );
}

writeBetweenMarkers(new URL('../README.md', import.meta.url), table(brief));
writeBetweenMarkers(
  new URL('../docs/configuration.md', import.meta.url),
  table((d) => d),
);
process.stdout.write(`README and docs/configuration.md: ${configKeys.length} configuration keys\n`);
