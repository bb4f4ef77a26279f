import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // .hotdeploy/ and .hotdeploy-agent/ are the default data directories of `serve` and `agent`: deployed apps' code.
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'examples/**', 'test/fixtures/generated/**', '**/*.d.ts', '.hotdeploy/**', '.hotdeploy-agent/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-imports': 'off',
    },
  },
  {
    // deploy/ecosystem.config.cjs is loaded by PM2 with require(): CommonJS, Node globals.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The dashboard's ES modules run in the browser, as shipped (no build step).
    files: ['services/server/dashboard/public/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries([
        'window', 'document', 'fetch', 'sessionStorage', 'TextDecoderStream', 'AbortController', 'setInterval',
        'HTMLElement', 'HTMLButtonElement', 'HTMLDialogElement', 'HTMLFormElement', 'HTMLInputElement', 'Node', 'EventListener',
      ].map((name) => [name, 'readonly'])),
    },
  },
  {
    // The agent runs inside users' processes: it must stay light and never reach into the service.
    files: ['agent/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['**/services/**', '../services/*'], message: 'agent/ never imports services/' },
          { group: ['fastify', 'fastify/*', '@fastify/*'], message: 'agent/ never imports fastify' },
        ],
      }],
    },
  },
);
