#!/usr/bin/env bash
# Set up a fresh machine: system tools for the sandbox, the script checks and the book's browser test, then the package.
# On a CPU machine, torch==2.13.0 takes the CPU build (a plain `pip install torch` would pull several GB of CUDA wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # bubblewrap: the stage-3 sandbox; shellcheck: stage-2 script checks; chromium: the book's browser test;
  # wordnet-base, fortunes: stage 1's real English (WordNet's lexicon and sentences; the fortunes, held out)
  # python3-pil, fonts-dejavu-core: stage 5 re-renders programs in the sandbox, whose Python (as root: /usr/bin/python3) needs Pillow and the font
  apt-get install -y -qq --no-install-recommends bubblewrap shellcheck chromium chromium-driver wordnet-base fortunes python3-pil fonts-dejavu-core >/dev/null
fi
PY=${PYTHON:-python3}
if ! $PY -c 'import torch' 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then $PY -m pip install -q "torch>=2.10"; else $PY -m pip install -q torch==2.13.0; fi
fi
$PY -m pip install -q -e ".[dev,book,bench]"
