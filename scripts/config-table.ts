// Rewrites the configuration table in README.md (between the config:start/end markers) from src/config.ts,
// the one place the keys are declared. Run: npx tsx scripts/config-table.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { configKeys } from '../src/config.js';

function cell(v: unknown): string {
  if (Array.isArray(v)) return v.length ? `\`${v.join(',')}\`` : '(empty)';
  if (v === '') return '(empty)';
  return `\`${String(v)}\``;
}

const rows = configKeys.map((k) => `| \`${k.env}\` | ${cell(k.default)} | ${k.description} |`);
const table = ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
const path = new URL('../README.md', import.meta.url);
const readme = readFileSync(path, 'utf8');
const next = readme.replace(/<!-- config:start -->[\s\S]*<!-- config:end -->/, `<!-- config:start -->\n${table}\n<!-- config:end -->`);
writeFileSync(path, next);
process.stdout.write(`README: ${rows.length} configuration keys\n`);
