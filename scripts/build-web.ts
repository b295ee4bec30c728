// Builds the account page and operator console (web/) into dist/web (or the directory given): one JavaScript
// bundle (Preact + htm + uPlot + the pages, ES2022 module), one stylesheet, and index.html. No CDN, nothing
// fetched at run time: the service serves these files at /app/ (src/api/web-app.ts).
// Usage: npx tsx scripts/build-web.ts [outdir]
import { copyFile, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildWebApp(outdir = path.join(root, 'dist', 'web')): Promise<string> {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  await build({
    absWorkingDir: root,
    entryPoints: [
      { in: 'web/src/main.ts', out: 'app' },
      { in: 'web/src/styles.css', out: 'app' },
    ],
    outdir,
    bundle: true,
    format: 'esm',
    target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
    minify: true,
    sourcemap: 'linked',
    legalComments: 'linked',
    logLevel: 'warning',
  });
  await copyFile(path.join(root, 'web', 'index.html'), path.join(outdir, 'index.html'));
  return outdir;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = await buildWebApp(process.argv[2] ? path.resolve(process.argv[2]) : undefined);
  // stderr: `npm run -s export > FILE.jsonl` builds first, and its stdout is the file
  console.error(`web app built into ${path.relative(process.cwd(), out) || '.'}`);
}
