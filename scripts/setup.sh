#!/usr/bin/env bash
# Set up everything the demo and the test suite need, idempotently:
#   - as root: Debian's slurm-wlm, munge, slurmdbd, mariadb-server, openssh-server
#     and chromium (apt), only when missing;
#   - .venv in the repository with the package and its [dev] extras (pip);
#   - .venv-jh5: the same with the oldest supported JupyterHub (5.4.3), for the
#     compatibility pass of scripts/test.sh;
#   - configurable-http-proxy and the other pinned npm packages (npm ci);
#   - .venv-firecrest: the real FirecREST v2 server (../shared/firecrest/server-2.5.6,
#     or $FSP_FIRECREST_SRC) in its own virtual environment, for the real-server tests;
#   - as root: /opt/fsp-jobenv (or $FSP_JOB_ENV), a world-readable environment with
#     jupyterhub-singleuser, JupyterLab and this package, built on Debian's
#     /usr/bin/python3, so that jobs of real Unix users can run it.
# Repeated runs skip what is already done (stamps keyed on pyproject.toml and
# package-lock.json), so the demo and test commands can call it every time.
#
# Environment: PYTHON (interpreter for the venv, default python3, >= 3.10),
# SETUP_SKIP_APT=1 (never touch apt, even as root).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { printf 'setup: %s\n' "$*"; }
die() {
  printf 'setup: error: %s\n' "$*" >&2
  exit 1
}

# --- system packages (root only) -------------------------------------------------------
apt_packages=(slurm-wlm munge slurmdbd mariadb-server openssh-server chromium)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# python3 -m venv needs ensurepip, which Debian ships separately; the job
# environment is built on Debian's own /usr/bin/python3.
if ! "${PYTHON:-python3}" -c 'import ensurepip' >/dev/null 2>&1 ||
  { [ -x /usr/bin/python3 ] && ! /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1; }; then
  missing+=("python3-venv")
fi
# Debian packages npm apart from nodejs.
if command -v node >/dev/null 2>&1 && ! command -v npm >/dev/null 2>&1; then
  missing+=("npm")
fi
if [ ${#missing[@]} -eq 0 ]; then
  say "system packages present (${apt_packages[*]})"
elif [ "${SETUP_SKIP_APT:-0}" = 1 ]; then
  say "SETUP_SKIP_APT=1: not installing ${missing[*]}"
elif [ "$(id -u)" -ne 0 ]; then
  say "not root: skipping apt; missing ${missing[*]} (install them with: sudo apt-get install -y ${missing[*]})"
  say "tests that need Slurm or Chromium are skipped outside CI"
elif ! command -v apt-get >/dev/null 2>&1; then
  say "no apt-get on this machine: install ${missing[*]} yourself"
else
  say "installing ${missing[*]} (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
fi

# --- Python virtual environment -------------------------------------------------------
python=${PYTHON:-python3}
command -v "$python" >/dev/null 2>&1 || die "$python not found (Python 3.10+ is required)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
  die "$python is $("$python" -V 2>&1); Python 3.10+ is required"
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $("$python" -V 2>&1)"
  "$python" -m venv .venv
fi
py_stamp=.venv/.firecrestspawner-setup
py_key=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_key" ] ||
  ! .venv/bin/python -c 'import firecrestspawner' >/dev/null 2>&1; then
  say "installing the package and its [dev] extras into .venv (pip)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$repo[dev]"
  printf '%s\n' "$py_key" >"$py_stamp"
else
  say ".venv up to date"
fi

# --- the oldest supported JupyterHub, for the compatibility pass ---------------------
# scripts/test.sh runs the hub-level tests a second time on it (sites run 5.4.x).
jh_oldest=${FSP_JUPYTERHUB_OLDEST:-5.4.3}
jh5_venv=$repo/.venv-jh5
jh5_stamp=$jh5_venv/.firecrestspawner-setup
jh5_key="$py_key jupyterhub==$jh_oldest"
if [ "$(cat "$jh5_stamp" 2>/dev/null)" != "$jh5_key" ] ||
  ! "$jh5_venv/bin/python" -c 'import firecrestspawner, jupyterhub' >/dev/null 2>&1; then
  say "installing JupyterHub $jh_oldest with the package into .venv-jh5 (pip)"
  [ -x "$jh5_venv/bin/python" ] || "$python" -m venv "$jh5_venv"
  "$jh5_venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo[dev]" \
    "jupyterhub==$jh_oldest"
  printf '%s\n' "$jh5_key" >"$jh5_stamp"
else
  say ".venv-jh5 up to date (JupyterHub $jh_oldest)"
fi

# --- npm packages (configurable-http-proxy, ...) --------------------------------------
command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js 18+ with npm"
npm_stamp=node_modules/.firecrestspawner-setup
npm_key=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_key" ] ||
  [ ! -x node_modules/.bin/configurable-http-proxy ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "$npm_key" >"$npm_stamp"
else
  say "node_modules up to date"
fi

# --- the real FirecREST server, in its own venv ------------------------------------------
f7t_src=${FSP_FIRECREST_SRC:-$repo/../shared/firecrest/server-2.5.6}
f7t_venv=${FSP_FIRECREST_VENV:-$repo/.venv-firecrest}
if [ -f "$f7t_src/requirements.txt" ] && [ -f "$f7t_src/constraints.txt" ]; then
  f7t_stamp=$f7t_venv/.firecrestspawner-setup
  f7t_key=$(cat "$f7t_src/requirements.txt" "$f7t_src/constraints.txt" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$f7t_stamp" 2>/dev/null)" != "$f7t_key" ] || [ ! -x "$f7t_venv/bin/uvicorn" ]; then
    say "installing the FirecREST server from $f7t_src into $f7t_venv (pip)"
    "$python" -m venv "$f7t_venv"
    "$f7t_venv/bin/python" -m pip install -q --disable-pip-version-check --pre \
      -r "$f7t_src/requirements.txt" -c "$f7t_src/constraints.txt"
    printf '%s\n' "$f7t_key" >"$f7t_stamp"
  else
    say "FirecREST server venv up to date ($f7t_venv)"
  fi
else
  say "no FirecREST server source at $f7t_src (set FSP_FIRECREST_SRC): the real-server tests cannot run"
fi

# --- the job environment for real Unix users ------------------------------------------
# The venv above lives wherever $python does (under root's 0700 home with pyenv):
# jobs running as other users need their own world-readable environment.
job_env=${FSP_JOB_ENV:-/opt/fsp-jobenv}
job_python=/usr/bin/python3
if [ "$(id -u)" -ne 0 ]; then
  say "not root: not creating the job environment $job_env"
elif [ ! -x "$job_python" ] || ! "$job_python" -c 'import ensurepip' >/dev/null 2>&1; then
  say "no $job_python with venv: cannot create the job environment $job_env"
else
  hub_versions=$(.venv/bin/python -c 'import importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in ("jupyterhub", "jupyterlab", "jupyter_server")))')
  job_stamp=$job_env/.firecrestspawner-deps
  if [ "$(cat "$job_stamp" 2>/dev/null)" != "$hub_versions" ]; then
    say "creating the job environment $job_env ($hub_versions)"
    "$job_python" -m venv "$job_env"
    "$job_env/bin/python" -m pip install -q --disable-pip-version-check $hub_versions
    printf '%s\n' "$hub_versions" >"$job_stamp"
  fi
  # This package itself (the firecrestspawner-singleuser wrapper), whenever its code changed.
  pkg_stamp=$job_env/.firecrestspawner-package
  pkg_key=$(cat pyproject.toml $(find firecrestspawner -name '*.py' | sort) | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$pkg_stamp" 2>/dev/null)" != "$pkg_key" ]; then
    say "installing this package into $job_env"
    "$job_env/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$repo"
    printf '%s\n' "$pkg_key" >"$pkg_stamp"
  else
    say "job environment up to date ($job_env)"
  fi
  chmod -R a+rX "$job_env"
fi

say "done: .venv/bin/firecrestspawner, node_modules/.bin/configurable-http-proxy"
