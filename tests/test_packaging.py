"""The wheel: built from this repository, installed into a fresh virtual environment, and used from a folder outside
the repository, so that nothing can come from the source tree. It must hold every module (subpackages included) and
the package data under `codellm/resources/`, and its `codellm` command must start.

The virtual environment sees the system's site-packages (torch, numpy, ... come from there, and the wheel is installed
with `--no-deps`), which may hold an editable install of this repository: the test checks that `codellm` is imported
from the virtual environment, not from here. Nothing is downloaded (`--no-build-isolation`, `--no-index`), and the
build writes nothing into the repository (its `build/` and `.egg-info` folders go to a temporary one, through
setuptools' `DIST_EXTRA_CONFIG`). It takes about ten seconds.
"""
import json, os, subprocess, sys, zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'codellm'


def sh(*cmd, cwd=None, env=None, timeout=600):
    "Run `cmd`; fail the test with its output if it fails."
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def repo_files(folder: Path, pattern: str = '*') -> set[str]:
    "Files under `folder` (no caches), as paths inside the installed package: 'codellm/stages/bash_data.py'."
    return {p.relative_to(ROOT).as_posix() for p in folder.rglob(pattern)
            if p.is_file() and '__pycache__' not in p.parts and p.suffix != '.pyc'}


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    "Build the wheel, install it into a fresh venv; return (wheel, venv python, installed package folder, clean env, outside cwd)."
    tmp = tmp_path_factory.mktemp('packaging')
    extra = tmp / 'build.cfg'   # setuptools' build/ and egg-info in tmp: no stale build/lib of an older layout, no writes here
    extra.write_text(f'[build]\nbuild_base = {tmp / "build"}\n[egg_info]\negg_base = {tmp}\n')
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'PIP_REQUIRE_VIRTUALENV')}
    env.update(DIST_EXTRA_CONFIG=str(extra), PIP_DISABLE_PIP_VERSION_CHECK='1', PYTHONNOUSERSITE='1')
    sh(sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-w', tmp / 'wheels', ROOT, env=env)
    [wheel] = (tmp / 'wheels').glob('codellm-*.whl')
    venv = tmp / 'venv'
    sh(sys.executable, '-m', 'venv', '--system-site-packages', '--without-pip', venv, env=env)
    python = venv / 'bin' / 'python'
    # this interpreter's pip, installing into the venv (--python), instead of bootstrapping a pip inside it
    sh(sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps', '--no-index', '--force-reinstall', wheel, env=env)
    outside = tmp / 'elsewhere'; outside.mkdir()
    r = sh(python, '-c', 'import codellm, json; print(json.dumps(codellm.__file__))', cwd=outside, env=env)
    pkg = Path(json.loads(r.stdout)).parent
    return wheel, python, pkg, env, outside


def test_imported_from_the_venv(installed):
    _, python, pkg, _, _ = installed
    assert pkg.is_relative_to(python.parent.parent) and not pkg.is_relative_to(ROOT), pkg


def test_wheel_holds_every_module(installed):
    "Every module of the source tree, subpackages included, is in the wheel."
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = repo_files(PKG, '*.py')
    assert {'codellm/stages/code_finetuning.py', 'codellm/tools/toolbox.py'} <= modules
    assert modules <= names, sorted(modules - names)


def test_cli_and_subpackage_imports_work_outside_the_repo(installed):
    _, python, _, env, outside = installed
    r = sh(python.parent / 'codellm', '--help', cwd=outside, env=env, timeout=300)
    assert 'prepare' in r.stdout and 'train' in r.stdout
    sh(python, '-c', 'import codellm.stages.code_finetuning, codellm.tools.toolbox', cwd=outside, env=env, timeout=300)


def test_package_data_is_installed(installed):
    "Every file under codellm/resources/ is in the installed package, byte for byte."
    _, _, pkg, _, _ = installed
    if not (PKG / 'resources').is_dir(): pytest.skip('codellm/resources/ does not exist (yet)')
    data = repo_files(PKG / 'resources')
    assert data
    missing = [f for f in sorted(data) if not (pkg.parent / f).is_file()]
    assert not missing, f'not in the installed package: {missing} (pyproject.toml: [tool.setuptools.package-data])'
    for f in data: assert (pkg.parent / f).read_bytes() == (ROOT / f).read_bytes(), f
