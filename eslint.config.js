// Lint: ESLint with typescript-eslint's type-aware recommended rules
// (`npm run lint` runs it with the Prettier check; `npm run format` rewrites).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's test() and describe() return promises the runner awaits itself.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] }],
      // A leading underscore marks a parameter or binding kept on purpose
      // (a handler's unused context, a property dropped with a rest pattern).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // Agent handlers and test fakes are async by contract (a throw must
      // become a rejection, the signature must return a promise); the rule
      // would flag each one that happens to have no await.
      '@typescript-eslint/require-await': 'off',
      // The code writes `list[i]!` for indexed reads, as if
      // noUncheckedIndexedAccess were on; without that option the rule flags
      // every such `!` (about 190 across the tree), which is style, not a bug.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
