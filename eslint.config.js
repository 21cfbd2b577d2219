// ESLint flat config: eslint's and typescript-eslint's recommended rules, with type information (the project
// service reads tsconfig.json; nothing is fetched at lint time). Formatting is prettier's job (.prettierrc.json).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['dist/', 'node_modules/', 'test/fixtures/'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'web/src/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // node:test's test() / describe() / it() return promises that the runner itself awaits; any other
      // unawaited promise is still an error.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      // `async` without `await` is how a function implements a Promise-returning interface (group runners,
      // predict callbacks), and it turns a synchronous throw into a rejection: nothing to flag.
      '@typescript-eslint/require-await': 'off',
      // Regular expressions match messages verbatim, including the two-space indent of `\n  hint:`.
      'no-regex-spaces': 'off',
      // `const { dropped: _dropped, ...rest } = x` and `_`-named parameters say "unused on purpose".
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Tests assert on parsed JSON (run.json, configs), which is `any`; the assertions are the type check.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
);
