#!/usr/bin/env bash
# Installs the package in freshly made consumer apps, each from the npm registry
# in a directory of its own, and runs them:
# - in-memory apps: Nest 11 and Nest 12, each as a CommonJS and as an ES module
#   app, without Redis installed (app.cjs/app.mjs, check.cjs);
# - Redis apps on nestjs-mtproto-sessions/redis against a redis-server of their
#   own: two with node-redis, two with ioredis and no node-redis, which give the
#   storage their own ioredis clients (app-redis.*, redis-check.cjs);
# - every install path the README documents: the packed tarball (most apps),
#   `npm install --install-links <clone>`, and `npm install git+file://<clone>`
#   (which installs the clone's committed HEAD, not uncommitted changes);
# - the docs apps: every TypeScript block of README.md and docs/*.md
#   type-checked (test/docs/check-snippets.mjs) in an ES module app laid out as
#   `nest new` makes it today and in a CommonJS one as Nest 11's made it
#   (test/docs/apps/).
# Each app runs on the Node major in its row below when NODE_DIR_<major> names
# the directory of that Node's binary (.ci/run sets them), else on the Node on
# PATH. The rows put each Nest major on every Node line.
# Usage, from the repo root after `npm run build`: bash test/consumers/run.sh [app name...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# name                 nest  mode  kind     source         node
apps=(
  'nest11-cjs           11   cjs   memory   tarball        20'
  'nest11-esm           11   esm   memory   tarball        26'
  'nest12-cjs           12   cjs   memory   tarball        20'
  'nest12-esm           12   esm   memory   tarball        22'
  'nest11-redis-cjs     11   cjs   redis    tarball        24'
  'nest12-redis-esm     12   esm   redis    tarball        26'
  'nest12-ioredis-cjs   12   cjs   ioredis  tarball        24'
  'nest11-ioredis-esm   11   esm   ioredis  tarball        22'
  'install-links        12   esm   memory   install-links  24'
  'git-file             12   esm   memory   git            22'
  'docs-esm             12   esm   docs     tarball        26'
  'docs-cjs             11   cjs   docs     tarball        24'
)

[[ -f $repo/dist/cjs/index.js && -f $repo/dist/esm/index.js ]] || { echo "no build in $repo/dist: run npm run build first" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "the Redis consumer apps need redis-server (Debian package redis-server)" >&2; exit 1; }

selected=("$@")
wanted() {
  [[ ${#selected[@]} -eq 0 ]] && return 0
  local name
  for name in "${selected[@]}"; do [[ $name == "$1" ]] && return 0; done
  return 1
}

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

# consumer NAME NEST_MAJOR cjs|esm KIND SOURCE NODE_MAJOR
# Runs in the background (see below), so `set -e` stops it at the first failing command.
consumer() {
  local name=$1 major=$2 mode=$3 kind=$4 source=$5 node=$6 app="$tmp/$1"
  local node_dir_var="NODE_DIR_$node"
  if [[ -n ${!node_dir_var:-} ]]; then PATH="${!node_dir_var}:$PATH"; fi
  node --version >"$tmp/$name.node"

  local package
  case $source in
    tarball) package=$tarball ;;
    install-links) package=$repo ;;
    git) package="git+file://$repo" ;;
  esac
  local install=(npm install --no-audit --no-fund --loglevel=error)
  if [[ $source == install-links ]]; then install+=(--install-links); fi

  local ext=cjs
  if [[ $mode == esm ]]; then ext=mjs; fi
  local emitter='^3'
  if [[ $major == 12 ]]; then emitter='^12'; fi
  local deps=("$package" "@nestjs/common@^$major" "@nestjs/core@^$major" reflect-metadata rxjs)

  if [[ $kind == docs ]]; then
    cp -r "$repo/test/docs/apps/$mode" "$app"
    # What the blocks of README.md and docs/ import, at the versions a Nest $major app takes.
    deps+=("@nestjs/platform-express@^$major" "@nestjs/event-emitter@$emitter" @types/node@^24 @types/express@^5
      redis ioredis @opentelemetry/api @opentelemetry/sdk-metrics @opentelemetry/exporter-prometheus)
    if [[ $major == 12 ]]; then
      deps+=(@nestjs/config@^12 @nestjs/terminus@^12 typescript@~6.0)   # as `nest new` (CLI 12) has them
    else
      deps+=(@nestjs/config@^4 @nestjs/terminus@^11 typescript@^5.7.3)  # as Nest 11's `nest new` had them
    fi
    (cd "$app" && "${install[@]}" "${deps[@]}")
    (cd "$app" && node "$repo/test/docs/check-snippets.mjs" "$app")
    return
  fi

  mkdir "$app"
  local type=commonjs
  if [[ $mode == esm ]]; then type=module; fi
  printf '{ "name": "consumer-%s", "private": true, "type": "%s" }\n' "$name" "$type" >"$app/package.json"
  case $kind in
    redis | ioredis)
      cp "$here/app-redis.$ext" "$app/index.js"
      cp "$here/redis-check.cjs" "$app/redis-check.cjs"
      deps+=("$kind")
      ;;
    memory)
      cp "$here/app.$ext" "$app/index.js"
      cp "$here/check.cjs" "$app/check.cjs"
      deps+=("@nestjs/event-emitter@$emitter" "@nestjs/terminus@^12")
      ;;
  esac
  (cd "$app" && "${install[@]}" "${deps[@]}")
  local client=''
  if [[ $kind != memory ]]; then client=$kind; fi
  (cd "$app" && EXPECT_NEST_MAJOR=$major REDIS_URL="redis://127.0.0.1:$port" REDIS_CLIENT=$client timeout 120 node index.js)
}

names=() pids=() labels=()
for row in "${apps[@]}"; do
  read -r name major mode kind source node <<<"$row"
  wanted "$name" || continue
  consumer "$name" "$major" "$mode" "$kind" "$source" "$node" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
  case $source in
    tarball) from='the tarball' ;;
    install-links) from='npm install --install-links <clone>' ;;
    git) from='npm install git+file://<clone>' ;;
  esac
  labels+=("Nest $major, ${mode^^}, $kind, from $from")
done
[[ ${#names[@]} -gt 0 ]] || { echo "no app named ${selected[*]}" >&2; exit 2; }

passed=0 failed=0
for i in "${!names[@]}"; do
  name=${names[$i]}
  status=0
  wait "${pids[$i]}" || status=$?
  node_version=$(cat "$tmp/$name.node" 2>/dev/null || echo '?')
  if [[ $status -eq 0 ]]; then
    echo "ok $name (Node $node_version; ${labels[$i]})"
    if [[ $name == docs-* ]]; then grep -E '^[0-9]+ blocks' "$tmp/$name.log" | sed 's/^/    /'; fi
    passed=$((passed + 1))
  else
    echo "not ok $name (Node $node_version; ${labels[$i]})"
    sed 's/^/    /' "$tmp/$name.log"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
