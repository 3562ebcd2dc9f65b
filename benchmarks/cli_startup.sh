#!/bin/bash
# Whole-process times (median of 5) of `firecrestspawner --version` and `validate`
# for two source trees, and of check-jsonschema on the same files and schema.
#   BEFORE=/tmp/old-tree AFTER=$PWD CJ=/tmp/cj/bin/check-jsonschema FILES200=/tmp/200 \
#     bash benchmarks/cli_startup.sh
# A tree is a `git archive` copy; run from outside both trees (`python -m` puts the
# working directory first on sys.path). FILES200: a directory written by
# benchmarks.profiles_bench.generate(). check-jsonschema: its own virtualenv (PyPI).
# PY: the interpreter of both trees (default: $AFTER/.venv/bin/python).
# Each figure is "wall s (cpu s)": the median wall time and the median user+system
# CPU time of the 5 runs (CPU moves less than wall time on a loaded machine).
set -u
PY=${PY:-$AFTER/.venv/bin/python}
med() {
  local walls=() cpus=() out
  out=$(mktemp)
  for _ in 1 2 3 4 5; do
    /usr/bin/time -f "%e %U %S" -o "$out" "$@" >/dev/null 2>&1
    read -r e u s <"$out"
    walls+=("$e")
    cpus+=("$(echo "$u + $s" | bc)")
  done
  rm -f "$out"
  printf '%s (%s)' "$(printf '%s\n' "${walls[@]}" | sort -n | sed -n 3p)" \
    "$(printf '%s\n' "${cpus[@]}" | sort -n | sed -n 3p)"
}
cd /tmp || exit 1
B="env PYTHONPATH=$BEFORE $PY -m firecrestspawner"
A="env PYTHONPATH=$AFTER $PY -m firecrestspawner"
C="$CJ --schemafile $AFTER/schemas/profile.schema.json"
F1=$AFTER/profiles/demo.yaml
uptime
echo "version      before $(med $B --version)  after $(med $A --version)"
echo "validate-1   before $(med $B validate "$F1")  after $(med $A validate "$F1")  check-jsonschema $(med $C "$F1")"
echo "validate-200 before $(med $B validate "$FILES200")  after $(med $A validate "$FILES200")  check-jsonschema $(med $C "$FILES200"/*.yaml)"
uptime
