/**
 * Nest 12 ships as ES modules, which jest's CommonJS loader cannot require on
 * Node < 24.9; swc transforms it (and our TypeScript, with decorator metadata)
 * to CommonJS. swc does not type-check: `npm run typecheck` does.
 * @type {import('jest').Config}
 */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
  moduleNameMapper: {
    '^nestjs-mtproto-sessions$': '<rootDir>/src/index.ts',
    '^nestjs-mtproto-sessions/testing$': '<rootDir>/src/testing/index.ts',
    '^nestjs-mtproto-sessions/redis$': '<rootDir>/src/storages/redis/index.ts',
    '^nestjs-mtproto-sessions/terminus$': '<rootDir>/src/terminus/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  cacheDirectory: '<rootDir>/.jest-cache',
};
