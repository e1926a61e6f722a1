#!/usr/bin/env bash
# Packs the package and loads the tarball in freshly installed consumer apps:
# Nest 11 and Nest 12, each as a CommonJS app and as an ES module app, without
# Redis installed; and two Redis apps that install node-redis and use the
# nestjs-mtproto-sessions/redis entry point against a redis-server of their own.
# Two more install ioredis and no node-redis, and give the storage their own ioredis clients.
# Usage, from the repo root after `npm run build`: bash test/consumers/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

[[ -f $repo/dist/cjs/index.js && -f $repo/dist/esm/index.js ]] || { echo "no build in $repo/dist: run npm run build first" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "the Redis consumer apps need redis-server (Debian package redis-server)" >&2; exit 1; }

tmp=$(mktemp -d)
redis_pid=''
cleanup() {
  if [[ -n $redis_pid ]]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
tarball="$tmp/$(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$tmp" | tail -n 1)"

# A free loopback port for this run's own redis-server, which nothing else uses.
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --logfile "$tmp/redis.log" &
redis_pid=$!
for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$port" ping >/dev/null || { echo "redis-server did not start on port $port" >&2; cat "$tmp/redis.log" >&2; exit 1; }

# consumer NAME NEST_MAJOR EVENT_EMITTER_RANGE cjs|esm [redis]
# Runs in the background (see below), so `set -e` stops it at the first failing command.
consumer() {
  local name=$1 major=$2 emitter=$3 mode=$4 with=${5:-} app="$tmp/$1"
  mkdir "$app"
  local type=commonjs ext=cjs
  if [[ $mode == esm ]]; then type=module ext=mjs; fi
  printf '{ "name": "consumer-%s", "private": true, "type": "%s" }\n' "$name" "$type" >"$app/package.json"
  local deps=("$tarball" "@nestjs/common@^$major" "@nestjs/core@^$major" reflect-metadata rxjs)
  if [[ $with == redis ]]; then
    cp "$here/app-redis.$ext" "$app/index.js"
    cp "$here/redis-check.cjs" "$app/redis-check.cjs"
    deps+=(redis)
  elif [[ $with == ioredis ]]; then
    cp "$here/app-redis.$ext" "$app/index.js"
    cp "$here/redis-check.cjs" "$app/redis-check.cjs"
    deps+=(ioredis)
  else
    cp "$here/app.$ext" "$app/index.js"
    cp "$here/check.cjs" "$app/check.cjs"
    deps+=("@nestjs/event-emitter@$emitter" "@nestjs/terminus@^12")
  fi
  (cd "$app" && npm install --no-audit --no-fund --loglevel=error "${deps[@]}")
  (cd "$app" && EXPECT_NEST_MAJOR=$major REDIS_URL="redis://127.0.0.1:$port" REDIS_CLIENT=$with timeout 120 node index.js)
}

names=(nest11-cjs nest11-esm nest12-cjs nest12-esm nest11-redis-cjs nest12-redis-esm nest12-ioredis-cjs nest11-ioredis-esm)
consumer nest11-cjs 11 ^3 cjs >"$tmp/nest11-cjs.log" 2>&1 & pids=($!)
consumer nest11-esm 11 ^3 esm >"$tmp/nest11-esm.log" 2>&1 & pids+=($!)
consumer nest12-cjs 12 ^12 cjs >"$tmp/nest12-cjs.log" 2>&1 & pids+=($!)
consumer nest12-esm 12 ^12 esm >"$tmp/nest12-esm.log" 2>&1 & pids+=($!)
consumer nest11-redis-cjs 11 - cjs redis >"$tmp/nest11-redis-cjs.log" 2>&1 & pids+=($!)
consumer nest12-redis-esm 12 - esm redis >"$tmp/nest12-redis-esm.log" 2>&1 & pids+=($!)
consumer nest12-ioredis-cjs 12 - cjs ioredis >"$tmp/nest12-ioredis-cjs.log" 2>&1 & pids+=($!)
consumer nest11-ioredis-esm 11 - esm ioredis >"$tmp/nest11-ioredis-esm.log" 2>&1 & pids+=($!)

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
