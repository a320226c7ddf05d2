#!/usr/bin/env bash
# The test suite: notebooks clean and in sync with the package; every notebook executed (as the book is built: a failing
# cell fails the build, `#| slow` cells are skipped exactly as nbdev-test skips them); then pytest, browser test included.
# Locally, `nbdev-test --n-workers 1` runs the notebook tests alone (in curriculum order).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== notebooks are clean and codellm/ is in sync with them"
nbdev-clean
nbdev-export
if [ -n "$(git status --porcelain -- nbs codellm)" ]; then
  git status --porcelain -- nbs codellm
  echo "ERROR: notebooks not clean or codellm/ out of sync! Run: nbdev-clean && nbdev-export, then commit"; exit 1
fi
echo "== notebook tests: every notebook executed while building the book"
python3 -m codellm book --strict
echo "== pytest"
python3 -m pytest -q tests
