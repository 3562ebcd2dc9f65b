#!/usr/bin/env bash
# The demo command: set up (scripts/setup.sh), then run `firecrestspawner demo`.
# Arguments go to the demo, e.g. `bash scripts/demo.sh --port 8080 --backend local`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH=$PWD/node_modules/.bin:$PWD/.venv/bin:$PATH
exec .venv/bin/firecrestspawner demo "$@"
