#!/usr/bin/env bash
# The test command: set up (scripts/setup.sh), validate the shipped profiles, lint, type-check,
# then run the whole pytest suite. Extra arguments go to pytest, e.g.
#   bash scripts/test.sh tests/unit -x -q
# With CI=true nothing is skipped: a test that needs Slurm, Chromium or
# configurable-http-proxy fails when it is missing. Services the suite started
# (the local Slurm) are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

bash scripts/setup.sh

export VIRTUAL_ENV=$repo/.venv
export PATH=$repo/node_modules/.bin:$VIRTUAL_ENV/bin:$PATH
export CI=${CI:-}

# Slurm: remember whether it answered before the suite, so that only a Slurm the
# suite started (tests/fixtures/slurm.py starts it on demand) is stopped on exit.
slurm_was_up=0
if command -v sinfo >/dev/null 2>&1 && timeout 5 sinfo -h >/dev/null 2>&1; then
  slurm_was_up=1
fi
cleanup() {
  if [ -n "${own_pid:-}" ]; then
    # Interrupted: stop the pytest running alongside as Ctrl-C would (if it has not
    # had one already), then for good after 60 s.
    kill -INT "$own_pid" 2>/dev/null || true
    for _ in $(seq 60); do
      kill -0 "$own_pid" 2>/dev/null || break
      sleep 1
    done
    kill -TERM "$own_pid" 2>/dev/null || true
    echo "test: output of the tests run alongside: ${own_log:-}" >&2
  fi
  if [ "$slurm_was_up" = 0 ] && [ -f scripts/slurm.sh ] &&
    timeout 5 sinfo -h >/dev/null 2>&1; then
    echo "test: stopping the Slurm the suite started"
    bash scripts/slurm.sh stop || echo "test: scripts/slurm.sh stop failed" >&2
  fi
}
trap cleanup EXIT

status() { [ "$1" = 0 ] && echo ok || echo "FAILED ($1)"; }

set +e
firecrestspawner validate profiles/ profiles/examples/
validate_rc=$?
ruff check .
ruff_rc=$?
mypy firecrestspawner
mypy_rc=$?
# No path among the arguments: pytest runs `testpaths` (tests/, pyproject.toml).
# The whole suite runs as two processes at once: its tests mostly wait (for hubs,
# jobs, poll intervals: a whole run used 0.6 of one core on average) and the machine
# has two cores. One process runs, one after the other as before, every test that
# uses the one shared Slurm, the real FirecREST server or a whole stack (marked
# slurm, real_firecrest or e2e), then the hub-level tests on the oldest JupyterHub;
# the other runs the rest, which use only emulators, hubs and ports of their own.
# Its output is kept in a file and printed once both are done.
shared="slurm or real_firecrest or e2e"
own_rc=0
pytest_status=
own_pid=
own_log=
if [ $# -eq 0 ]; then
  own_log=$(mktemp "${TMPDIR:-/tmp}/fsp-test-own.XXXXXX")
  echo "test: tests without a shared service run alongside (-m 'not ($shared)'; output at the end, meanwhile in $own_log)"
  # SIGINT back to the default (a script's background commands ignore it), so that
  # Ctrl-C stops it as it stops the other: pytest's fixtures stop what they started.
  env --default-signal=INT python -m pytest -m "not ($shared)" >"$own_log" 2>&1 &
  own_pid=$!
  echo "test: tests that use the shared Slurm, the real FirecREST or a whole stack (-m '$shared')"
  python -m pytest -m "$shared"
  pytest_rc=$?
else
  python -m pytest "$@"
  pytest_rc=$?
fi
if [ "$pytest_rc" = 5 ]; then
  echo "test: pytest collected no tests: that is a failure" >&2
fi
# The hub-level tests again on the oldest supported JupyterHub (the whole suite
# only: with arguments, only what they name runs).
jh5_rc=0
jh5_status="not run"
if [ $# -eq 0 ]; then
  jh5_version=$(.venv-jh5/bin/python -c 'import jupyterhub; print(jupyterhub.__version__)')
  echo "test: hub-level tests on JupyterHub $jh5_version (.venv-jh5)"
  .venv-jh5/bin/python -m pytest tests/hub tests/spawner tests/auth -m "not slurm"
  jh5_rc=$?
  jh5_status="$(status $jh5_rc) on JupyterHub $jh5_version"
fi
if [ -n "$own_pid" ]; then
  wait "$own_pid"
  own_rc=$?
  own_pid=
  echo "test: tests without a shared service (-m 'not ($shared)'), run alongside the above:"
  cat "$own_log"
  rm -f "$own_log"
  if [ "$own_rc" = 5 ]; then
    echo "test: pytest collected no tests without a shared service: that is a failure" >&2
  fi
  pytest_status="$(status $pytest_rc) with shared services, $(status $own_rc) without"
  [ "$pytest_rc" = 0 ] && pytest_rc=$own_rc
fi
set -e

elapsed=$((SECONDS - started))
printf 'test summary: validate %s, ruff %s, mypy %s, pytest %s, hub-level tests %s, %dm%02ds\n' \
  "$(status $validate_rc)" "$(status $ruff_rc)" "$(status $mypy_rc)" "${pytest_status:-$(status $pytest_rc)}" "$jh5_status" \
  $((elapsed / 60)) $((elapsed % 60))
[ "$validate_rc" = 0 ] && [ "$ruff_rc" = 0 ] && [ "$mypy_rc" = 0 ] && [ "$pytest_rc" = 0 ] && [ "$jh5_rc" = 0 ]
