// @ts-check
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'runs/', 'data/', '.gl/', '.whl/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: dirname(fileURLToPath(import.meta.url)) },
    },
  },
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      // Arrays of numbers (shapes, tuples) print usefully in messages; the other options are the preset's defaults.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowAny: true, allowArray: true, allowBoolean: true, allowNullish: true, allowNumber: true, allowRegExp: true },
      ],
      // Loaders and readers implement Promise-returning interfaces with async bodies so that throws become rejections.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain scripts outside tsconfig.json: no type information to lint with.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
