# Sourced by the shell scripts for their settings, so that no script repeats a default of
# jobs/lib/config/spec.ts (the one spec; empty = unset = the default):
#
#   . "$ROOT/scripts/config-env.sh"
#   config_env KAFKA_STATE_DIR KAFKA_PORT   # exports them as resolved (paths absolute)
#
# It runs the config command, dist/scripts/config.js. Before `npm run build` (a fresh checkout,
# `npm run setup`), or when the config sources are newer than dist/, current_js compiles that
# command alone into dist/ first: it imports only jobs/lib/config/, so that needs only node and
# node_modules/.bin/tsc (installed by `npm ci`) and takes a few seconds.

CONFIG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Prints the path of dist/<file>.js for the TypeScript file <file>.ts (relative to the project),
# compiling it and what it imports when it is missing or older than the config sources.
current_js() {
  local ts="$CONFIG_ROOT/$1" js="$CONFIG_ROOT/dist/${1%.ts}.js"
  if [[ ! -f "$js" || -n "$(find "$ts" "$CONFIG_ROOT/jobs/lib/config.ts" "$CONFIG_ROOT/jobs/lib/config" -newer "$js" -print -quit 2>/dev/null)" ]]; then
    "$CONFIG_ROOT/node_modules/.bin/tsc" --outDir "$CONFIG_ROOT/dist" --rootDir "$CONFIG_ROOT" --module commonjs \
      --target ES2022 --esModuleInterop --skipLibCheck --types node "$ts" >&2 || return 1
  fi
  printf '%s\n' "$js"
}

# Exports each NAME as the spec resolves it in this environment (relative paths against the
# project folder). Secrets are refused: a script reads those from the environment as given.
config_env() {
  local js out
  js="$(current_js scripts/config.ts)" || return 1
  out="$(cd "$CONFIG_ROOT" && node "$js" --shell "$@")" || return 1
  eval "$out"
}
