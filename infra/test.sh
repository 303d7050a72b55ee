#!/usr/bin/env bash
# Install dsar with its test extra into .venv, start the services, and run the test suite.
# This is the README's test command, and what .ci/run runs. Extra arguments go to pytest.
# DSAR_SQL_FAST_PATH=false runs the suite in the ORM-only mode (tests/state.py passes it on).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"

bash infra/services.sh
bash infra/browser.sh

.venv/bin/python -m pytest "$@"
