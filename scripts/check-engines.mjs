// Checks the Node versions this repository names against the `engines` of every
// package in package-lock.json, which is what `npm ci` compares when it prints
// EBADENGINE warnings.
//
// Usage: node scripts/check-engines.mjs [version...]
// - Each version given (CI gives the Node versions it tests on), and the lowest
//   version of each part of `devEngines.runtime.version` (the Node lines the
//   README names for working on the repository), must satisfy every package:
//   otherwise the packages that want more are listed and the exit status is 1.
// - The lowest version `engines` allows is reported, never failed on: the
//   package runs there, but some dev dependencies want a newer Node to install.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(repo, 'package.json'));
const semver = require('semver');

const manifest = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(path.join(repo, 'package-lock.json'), 'utf8'));

const devRange = manifest.devEngines?.runtime?.version;
if (typeof devRange !== 'string') throw new Error('package.json has no devEngines.runtime.version');
const lowest = (range) => new semver.Range(range).set.map((comparators) => semver.minVersion(comparators.map(String).join(' ')).version);

/** Packages of the lockfile whose `engines.node` does not allow `version`. */
function refusing(version) {
  const found = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    const wanted = entry.engines?.node;
    if (where === '' || typeof wanted !== 'string') continue;
    if (!semver.satisfies(version, wanted, { includePrerelease: true })) {
      found.push(`${where.replace(/^.*node_modules\//, '')}@${entry.version} (node ${wanted})`);
    }
  }
  return found;
}

const required = [...new Set([...process.argv.slice(2).map((version) => semver.clean(version) ?? version), ...lowest(devRange)])];
let failed = false;
for (const version of required) {
  const packages = refusing(version);
  if (!semver.satisfies(version, manifest.engines.node)) {
    console.log(`Node ${version}: outside this package's own engines (${manifest.engines.node})`);
    failed = true;
  } else if (packages.length > 0) {
    console.log(`Node ${version}: npm ci would warn (EBADENGINE) about ${packages.length} package(s):\n  ${packages.join('\n  ')}`);
    failed = true;
  } else {
    console.log(`Node ${version}: every package of the lockfile allows it`);
  }
}

const oldest = lowest(manifest.engines.node)[0];
const old = refusing(oldest);
console.log(
  `Node ${oldest}, the oldest engines (${manifest.engines.node}) allows: the package runs there; ` +
    (old.length === 0 ? 'every dev dependency installs there too' : `developing needs devEngines (${devRange}): ${old.length} dev package(s) want more (${old.join(', ')})`),
);
process.exit(failed ? 1 : 0);
