// The layer rules of docs/architecture.md, checked by `npm run lint` (dependency-cruiser):
//   lib ← nips ← store ← core ← relay / api ← app.ts (the composition root)
// Inside core/, each capability folder is used by others only through its index.ts. No import circles anywhere.
// config.ts and log.ts are the base every layer may read.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'an import circle',
      from: { path: '^src' },
      to: { circular: true },
    },
    {
      name: 'lib-is-a-leaf',
      severity: 'error',
      comment: 'src/lib holds generic helpers: they import nothing of ours',
      from: { path: '^src/lib/' },
      to: { path: '^src/', pathNot: '^src/lib/' },
    },
    {
      name: 'nips-are-pure',
      severity: 'error',
      comment: 'nips/ holds pure protocol rules: it imports only nips/ and lib/',
      from: { path: '^src/nips/' },
      to: { path: '^src/', pathNot: '^src/(nips|lib)/' },
    },
    {
      name: 'store-below-core',
      severity: 'error',
      comment: 'store/ imports only store/, nips/, lib/ and the base (config, log)',
      from: { path: '^src/store/' },
      to: { path: '^src/', pathNot: '^src/(store|nips|lib)/|^src/(config|log)\\.ts$' },
    },
    {
      name: 'core-below-transports',
      severity: 'error',
      comment: 'core/ knows nothing of the transports (relay/, api/) or the composition root',
      from: { path: '^src/core/' },
      to: { path: '^src/(relay|api)/|^src/(app|index|migrate-cli)\\.ts$' },
    },
    {
      name: 'capabilities-through-their-index',
      severity: 'error',
      comment: 'a capability is used by another one only through its index.ts',
      from: { path: '^src/core/([^/]+)/' },
      to: { path: '^src/core/([^/]+)/', pathNot: ['^src/core/$1/', '^src/core/[^/]+/index\\.ts$'] },
    },
    {
      name: 'transports-through-core-index',
      severity: 'error',
      comment: 'relay/ and api/ use core/ through each capability index.ts, and never store/ directly',
      from: { path: '^src/(relay|api)/' },
      to: { path: '^src/store/|^src/core/[^/]+/(?!index\\.ts$)' },
    },
    {
      name: 'transports-apart',
      severity: 'error',
      comment: 'the relay and the API do not import each other, nor the composition root',
      from: { path: '^src/relay/' },
      to: { path: '^src/api/|^src/(app|index)\\.ts$' },
    },
    {
      name: 'api-apart',
      severity: 'error',
      comment: 'the relay and the API do not import each other, nor the composition root',
      from: { path: '^src/api/' },
      to: { path: '^src/relay/|^src/(app|index)\\.ts$' },
    },
    {
      name: 'routes-not-through-api-index',
      severity: 'error',
      comment: 'route files take their services from api/services.ts, never from api/index.ts',
      from: { path: '^src/api/', pathNot: '^src/api/index\\.ts$' },
      to: { path: '^src/api/index\\.ts$' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
