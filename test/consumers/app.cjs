// A CommonJS consumer: require() is how it loads the package, import() the other way.
require('reflect-metadata');
const check = require('./check.cjs');

async function main() {
  await check({
    mode: 'CommonJS',
    pkg: require('nestjs-mtproto-sessions'),
    other: await import('nestjs-mtproto-sessions'),
    nestVersion: require('@nestjs/core/package.json').version,
    common: require('@nestjs/common'),
    core: require('@nestjs/core'),
    eventEmitter: require('@nestjs/event-emitter'),
    terminus: require('@nestjs/terminus'),
    health: require('nestjs-mtproto-sessions/terminus'),
    resolve: require.resolve,
    loaded: () => Object.keys(require.cache),
  });
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
