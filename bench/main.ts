/**
 * `npm run bench`: compiles the bench (tsconfig.bench.json) and runs this file
 * under `node --expose-gc`. The same file is the entry of the child processes
 * the harness forks for each suite and each memory measurement.
 */
import { main } from './harness.js';
import { suites } from './suites/index.js';

main(suites, process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
