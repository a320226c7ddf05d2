"Shared fixtures: a tiny prepared language corpus and a trained micro checkpoint, made once per test session."
import json, os, subprocess, sys
from pathlib import Path
import pytest

def codellm(*args, check=False, timeout=300, **kw):
    "Run `python -m codellm ARGS`; returns the CompletedProcess (text)."
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    r = subprocess.run([sys.executable, '-m', 'codellm', *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=env, stdin=subprocess.DEVNULL, **kw)
    if check and r.returncode != 0: raise AssertionError(f"codellm {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r

def one_line_error(r, *expected):
    "Assert that a CompletedProcess failed with exit 1 and one `ERROR: ...` line on stderr containing each of `expected`."
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('ERROR:') and 'Traceback' not in r.stderr, r.stderr
    for e in expected: assert e in lines[0], lines[0]

MICRO = ['--block-size', '64', '--batch-size', '4', '--eval-every', '4', '--no-progress']

@pytest.fixture(scope='session')
def lang_data(tmp_path_factory):
    d = tmp_path_factory.mktemp('data')
    codellm('prepare', 'language', '--num-stories', 300, '--vocab-size', 600, '--data-dir', d, check=True)
    return d

@pytest.fixture(scope='session')
def lang_model(lang_data, tmp_path_factory):
    m = tmp_path_factory.mktemp('models')
    r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', m, '--steps-per-epoch', 12, *MICRO, check=True)
    return m, json.loads(r.stdout)
