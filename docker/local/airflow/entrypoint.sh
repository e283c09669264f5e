#!/usr/bin/env bash
# As the official image's /entrypoint does for compose: an executable (airflow, bash, python,
# ...) runs as given; anything else is an Airflow subcommand (api-server, scheduler, ...).
set -euo pipefail
if [[ $# -eq 0 ]]; then exec airflow --help; fi
if command -v -- "$1" >/dev/null 2>&1; then exec "$@"; fi
exec airflow "$@"
