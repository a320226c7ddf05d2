#!/usr/bin/env bash
# The test suite: notebooks clean and in sync with the package, every notebook's tests, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== notebooks are clean and codellm/ is in sync with them"
nbdev-clean
nbdev-export
if [ -n "$(git status --porcelain -- nbs codellm)" ]; then
  git status --porcelain -- nbs codellm
  echo "ERROR: notebooks not clean or codellm/ out of sync! Run: nbdev-clean && nbdev-export, then commit"; exit 1
fi
echo "== notebook tests (in curriculum order: each stage starts from the previous stage's checkpoint)"
nbdev-test --n-workers 1 --timing
echo "== pytest"
python3 -m pytest -q tests
