import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers, each importing only those below it:
 * core <- storages/table <- storages (in-memory, redis) <- nest <- terminus; testing sits on core alone.
 * The compact table is plain TypeScript on core; the two storages use it
 * through its index (storages/table/index.ts), and neither imports the other.
 * An import that climbs a layer, reaches into the table, or reaches an
 * optional peer from a layer that every app loads, fails lint.
 */
const nest = { group: ['@nestjs/*', '**/nest/**'], message: 'core and storages are plain TypeScript: no Nest here.' };
const redisClient = { group: ['redis', '@redis/*', 'ioredis'], message: 'Redis clients are optional peers, loaded only behind nestjs-mtproto-sessions/redis.' };
const eventEmitter = { group: ['@nestjs/event-emitter', 'eventemitter2'], message: '@nestjs/event-emitter is an optional peer: its EventEmitter2 is found by discovery, never imported.' };
const redisStorage = { group: ['**/storages/redis/**', '../redis/**'], message: 'the Redis storage is reached only through nestjs-mtproto-sessions/redis.' };
const inMemoryStorage = { group: ['**/storages/in-memory/**', '../in-memory/**'], message: 'the in-memory storage is a storage: the table and the Redis storage do not import it.' };
const tableInsides = { group: ['**/table/*', '!**/table/index.js'], message: 'the storages use the table through its public API, storages/table/index.ts.' };
const storages = { group: ['**/storages/**', '../storages/**'], message: 'core imports nothing above it.' };
const terminus = { group: ['@nestjs/terminus', '**/terminus/**', '../terminus/**'], message: 'the health indicator is an optional peer, loaded only behind nestjs-mtproto-sessions/terminus.' };
const testing = { group: ['**/testing/**', '../testing/**'], message: 'the conformance kit is an entry point of its own, imported by no layer.' };
const layer = (files, ...patterns) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns }] } });

export default tseslint.config(
  // test/docs/contexts: templates with a hole for a docs fragment, compiled filled by test/docs/check-snippets.mjs.
  { ignores: ['dist/', 'dist-sample/', 'dist-bench/', 'node_modules/', '.jest-cache/', 'coverage/', 'test/docs/contexts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  layer(['src/core/**/*.ts'], nest, redisClient, storages, testing),
  layer(['src/storages/table/**/*.ts'], nest, redisClient, inMemoryStorage, redisStorage, testing),
  layer(['src/storages/in-memory/**/*.ts'], nest, redisClient, redisStorage, tableInsides, testing),
  layer(['src/storages/redis/**/*.ts'], nest, inMemoryStorage, tableInsides, testing),
  layer(['src/nest/**/*.ts'], redisClient, redisStorage, terminus, testing, eventEmitter),
  layer(['src/terminus/**/*.ts'], redisClient, redisStorage, testing),
  layer(['src/testing/**/*.ts'], nest, redisClient, storages),
  layer(['src/index.ts'], redisClient, redisStorage, terminus, testing, eventEmitter),
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly', __dirname: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
