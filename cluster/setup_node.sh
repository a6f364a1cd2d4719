#!/usr/bin/env bash
# Prepare one bare-metal node of the on-prem launcher cluster (launcher/local.yaml): the
# project's locked environment in ~/priorcache/.venv, built by `make env` exactly as on a
# laptop. Idempotent: `ray up` runs it on every (re)start, and a ready node skips the work.
set -euo pipefail
cd "$(dirname "$0")/.."

# uv.lock takes torch's CPU wheel from /opt/wheels ([tool.uv] find-links in pyproject.toml).
wheel=torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl
if [ ! -f "/opt/wheels/$wheel" ]; then
    sudo mkdir -p /opt/wheels
    sudo chown "$(id -u)" /opt/wheels
    python3 -m venv /tmp/priorcache-wheel-fetch
    /tmp/priorcache-wheel-fetch/bin/pip download --quiet --no-deps \
        --index-url https://download.pytorch.org/whl/cpu --dest /opt/wheels "torch==2.13.0+cpu"
    test -f "/opt/wheels/$wheel"
fi
# llama-cpp-python is compiled from source.
if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
    sudo apt-get update && sudo apt-get install -y --no-install-recommends build-essential python3-venv
fi
make env
