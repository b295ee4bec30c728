// ESLint (flat config) with typescript-eslint: its recommended rules with type information, on every
// TypeScript file of the repository. `npm run lint` runs it with --max-warnings 0. Formatting is Prettier's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tap/', 'data/', 'web/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      // fastify hooks and handlers are async by contract, as are the store's interfaces whose memory versions
      // answer at once: an async function without await is deliberate here.
      '@typescript-eslint/require-await': 'off',
      // knex answers `any`-typed rows; the store asserts each to its row shape where it reads them, which this
      // rule would have written as a type argument instead (the same check, another spelling).
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
      // fastify's route options take async hooks in arrays typed for both styles (callback and promise).
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { properties: false } }],
    },
  },
  {
    // tap's t.test() returns a promise the harness awaits; tests read JSON answers whose shape they assert.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      // a test reads [accepted, message] = … again and again and asserts only what the step is about
      'no-useless-assignment': 'off',
    },
  },
  {
    // knex migrations are async functions by contract, whether or not they await.
    files: ['migrations/**/*.ts'],
    rules: { '@typescript-eslint/require-await': 'off' },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
