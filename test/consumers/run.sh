#!/usr/bin/env bash
# Packs the package and loads the tarball in four freshly installed consumer apps:
# Nest 11 and Nest 12, each as a CommonJS app and as an ES module app.
# Usage, from the repo root after `npm run build`: bash test/consumers/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

[[ -f $repo/dist/cjs/index.js && -f $repo/dist/esm/index.js ]] || { echo "no build in $repo/dist: run npm run build first" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tarball="$tmp/$(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$tmp" | tail -n 1)"

# consumer NAME NEST_MAJOR EVENT_EMITTER_RANGE cjs|esm
# Runs in the background (see below), so `set -e` stops it at the first failing command.
consumer() {
  local name=$1 major=$2 emitter=$3 mode=$4 app="$tmp/$1"
  mkdir "$app"
  local type=commonjs entry=app.cjs
  if [[ $mode == esm ]]; then type=module entry=app.mjs; fi
  printf '{ "name": "consumer-%s", "private": true, "type": "%s" }\n' "$name" "$type" >"$app/package.json"
  cp "$here/$entry" "$app/index.js"
  cp "$here/check.cjs" "$app/check.cjs"
  (cd "$app" && npm install --no-audit --no-fund --loglevel=error \
    "$tarball" "@nestjs/common@^$major" "@nestjs/core@^$major" reflect-metadata rxjs "@nestjs/event-emitter@$emitter")
  (cd "$app" && EXPECT_NEST_MAJOR=$major node index.js)
}

names=(nest11-cjs nest11-esm nest12-cjs nest12-esm)
consumer nest11-cjs 11 ^3 cjs >"$tmp/nest11-cjs.log" 2>&1 & pids=($!)
consumer nest11-esm 11 ^3 esm >"$tmp/nest11-esm.log" 2>&1 & pids+=($!)
consumer nest12-cjs 12 ^12 cjs >"$tmp/nest12-cjs.log" 2>&1 & pids+=($!)
consumer nest12-esm 12 ^12 esm >"$tmp/nest12-esm.log" 2>&1 & pids+=($!)

passed=0 failed=0
for i in "${!names[@]}"; do
  if wait "${pids[$i]}"; then
    echo "ok ${names[$i]}"
    passed=$((passed + 1))
  else
    echo "not ok ${names[$i]}"
    sed 's/^/    /' "$tmp/${names[$i]}.log"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
