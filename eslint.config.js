import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.tmp/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-deprecated': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='Date'][property.name='now']", message: 'use the injected clock' },
      ],
    },
  },
  {
    // Adapters measure real time (file ages, lock waits, HTTP dates); core and cli go through the injected clock.
    files: ['src/platform/**', 'src/store/**', 'src/exec/**', 'test/**', 'scripts/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/oidc/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'openid-client', message: 'only src/oidc imports openid-client' }] }],
    },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'openid-client', message: 'core talks to providers through the OidcPort' },
            { name: '@napi-rs/keyring', message: 'core talks to the keychain through SecretStore' },
            { name: 'open', message: 'core opens browsers through the Browser port' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'core receives env and IO from deps' }],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', URLSearchParams: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', Response: 'readonly', Headers: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', performance: 'readonly' },
    },
  },
)
