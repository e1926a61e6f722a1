// Preloaded with --import: makes the ESM loader fail on any node-redis module,
// so a child process that imports the package root proves the root needs none.
import { register } from 'node:module';

register(
  'data:text/javascript,' +
    encodeURIComponent(`
      const redis = /[\\\\/]node_modules[\\\\/](redis|@redis[\\\\/][^\\\\/]+)[\\\\/]/;
      export async function load(url, context, next) {
        if (redis.test(url)) throw new Error('the package root loaded a Redis module: ' + url);
        return next(url, context);
      }
    `),
);
