"""Data-parallel training with torchrun: two CPU processes (gloo) must train exactly like one process with the same
global batch, only rank 0 may write files, and `--resume` must continue an interrupted torchrun run.

How the test sees inside the worker processes without changing codellm: a `sitecustomize.py` on PYTHONPATH (Python
imports it at start-up in every process torchrun launches) which, when asked through environment variables,
- records every file each rank opens for writing, renames or creates under the models folder (`sys.addaudithook`),
- raises KeyboardInterrupt at the start of a given step, which is exactly what Ctrl-C does to the training loop.

Both runs start from one saved initial checkpoint (`--checkpoint`): `train_stage` does not seed the initialisation
of a fresh model, so two fresh runs would start from different weights.
"""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                                reason='torch.distributed with gloo is not available')

SITECUSTOMIZE = textwrap.dedent('''
    import atexit, json, os, sys
    _watch, _out = os.environ.get('CODELLM_TEST_WATCH'), os.environ.get('CODELLM_TEST_AUDIT_OUT')
    if _watch and _out:
        _writes = set()
        def _path(p):
            try: return os.path.abspath(os.fsdecode(p))
            except TypeError: return None     # a file descriptor
        def _hook(event, args):
            if event == 'open':
                path, mode, flags = args
                writing = any(c in mode for c in 'wax+') if isinstance(mode, str) else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
                paths = [path] if writing else []
            elif event in ('os.rename', 'os.replace'): paths = [args[1]]
            elif event in ('os.remove', 'os.mkdir'): paths = [args[0]]
            else: return
            for p in paths:
                p = _path(p)
                if p and p.startswith(_watch): _writes.add(os.path.relpath(p, _watch))
        sys.addaudithook(_hook)
        @atexit.register
        def _dump():
            rank = os.environ.get('RANK', 'launcher')
            with open(os.path.join(_out, f'writes_{rank}_{os.getpid()}.json'), 'w') as f: json.dump(sorted(_writes), f)
    _stop = os.environ.get('CODELLM_TEST_STOP_AT')
    if _stop:
        import codellm.training as _t
        _orig_step = _t.Trainer.train_step
        def train_step(self):
            if self.step == int(_stop): raise KeyboardInterrupt   # as Ctrl-C would, on every rank at the same step
            _orig_step(self)
        _t.Trainer.train_step = train_step
''')

STEPS, EVAL_EVERY, STOP_AT = 6, 3, 4
TRAIN = ['train', '--stage', 'language', '--steps-per-epoch', STEPS, '--num-epochs', 1, '--eval-every', EVAL_EVERY,
         '--device', 'cpu', '--no-progress', '--no-use-amp']


def run(cmd, env_extra=None, timeout=300):
    env = {**os.environ, 'PYTHONUNBUFFERED': '1', 'OMP_NUM_THREADS': '1', **(env_extra or {})}
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


def torchrun(*args): return [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--standalone',
                             '-m', 'codellm', *args]
def single(*args): return [sys.executable, '-m', 'codellm', *args]


def audited(tmp: Path, name: str, models: Path, **extra) -> tuple[dict, Path]:
    "Environment that makes every process record its writes under `models` into a fresh folder."
    out = tmp / f'audit_{name}'; out.mkdir()
    return {'PYTHONPATH': os.pathsep.join([str(tmp / 'site'), os.environ.get('PYTHONPATH', '')]),
            'CODELLM_TEST_WATCH': str(models.resolve()), 'CODELLM_TEST_AUDIT_OUT': str(out), **extra}, out


def writes_by_rank(out: Path) -> dict:
    "rank -> files written; the torchrun launcher itself has no RANK (and writes nothing under models)."
    res = {}
    for f in out.glob('writes_*.json'):
        rank = f.name.split('_')[1]
        res.setdefault(rank, set()).update(json.loads(f.read_text()))
    return res


def history(models: Path) -> dict: return json.loads((models / 'language_train_log.json').read_text())['history']


def check(r):
    assert r.returncode == 0, f'exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}'
    return r


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "Tiny prepared data, one initial checkpoint, and the sitecustomize used to look inside the workers."
    tmp = tmp_path_factory.mktemp('ddp')
    data = tmp / 'data'
    check(run(single('prepare', 'language', '--num-stories', 300, '--vocab-size', 512, '--data-dir', data)))
    (tmp / 'site').mkdir(); (tmp / 'site' / 'sitecustomize.py').write_text(SITECUSTOMIZE)
    from codellm.checkpoint import save_checkpoint
    from codellm.model import GPT, preset_config
    from codellm.tokenizer import BPETokenizer
    tok = BPETokenizer.load(data / 'tokenizer.json')
    torch.manual_seed(0)
    init = tmp / 'init.pth'
    save_checkpoint(init, GPT(preset_config('tiny', vocab_size=tok.vocab_size, block_size=64)), tok, 'language')
    common = [*TRAIN, '--data-dir', data, '--checkpoint', init]
    # one process, global batch 8
    check(run(single(*common, '--batch-size', 8, '--models-dir', tmp / 'm1')))
    # two processes, 4 rows each: the same global batch
    m2 = tmp / 'm2'
    env, out = audited(tmp, 'ddp', m2)
    ddp = check(run(torchrun(*common, '--batch-size', 4, '--models-dir', m2), env))
    return dict(tmp=tmp, common=common, m1=tmp / 'm1', m2=m2, ddp=ddp, ddp_writes=writes_by_rank(out))


def test_ddp_matches_single_process(setup):
    h1, h2 = history(setup['m1']), history(setup['m2'])
    assert h1['step'] == h2['step'] == list(range(1, STEPS + 1))
    assert h1['val_step'] == h2['val_step'] == [EVAL_EVERY, STEPS]
    # fp32 (--no-use-amp): only the order of floating-point sums differs (one process vs gloo's all-reduce)
    for key in ('train_loss', 'val_loss'):
        diff = max(abs(a - b) for a, b in zip(h1[key], h2[key]))
        assert diff < 2e-3, f'{key}: single {h1[key]} vs ddp {h2[key]}'
    assert h2['train_loss'][-1] < h2['train_loss'][0] - 0.1, 'the DDP run did not learn'
    summary = json.loads(setup['ddp'].stdout[setup['ddp'].stdout.index('{'):])
    assert summary['steps'] == STEPS and summary['tokens'] == STEPS * 8 * 64   # tokens of both ranks counted


def test_ddp_only_rank0_writes(setup):
    w = setup['ddp_writes']
    assert set(w) >= {'0', '1'}, f'audit logs from ranks {sorted(w)}'
    assert w['1'] == set(), f'rank 1 wrote {sorted(w["1"])}'
    files = {Path(p).name for p in w['0']}
    assert {'language_model_best.pth', 'language_model_last.pth', 'language_train_log.json'} <= files
    assert sorted(p.name for p in setup['m2'].iterdir()) == sorted(p.name for p in setup['m1'].iterdir())
    assert setup['ddp'].stdout.count('"best_path"') == 1, 'the summary must be printed once (rank 0)'


def test_ddp_resume_after_interrupt(setup):
    tmp, m3 = setup['tmp'], setup['tmp'] / 'm3'
    env, _ = audited(tmp, 'stop', m3, CODELLM_TEST_STOP_AT=str(STOP_AT))
    r = run(torchrun(*setup['common'], '--batch-size', 4, '--models-dir', m3), env)
    assert r.returncode != 0 and 'INTERRUPTED' in r.stderr, r.stderr[-3000:]
    state = torch.load(m3 / 'language_model_last.pth', map_location='cpu', weights_only=True)['train_state']
    assert state['step'] == STOP_AT                     # saved by the interrupt handler, not only at an evaluation

    env, out = audited(tmp, 'resume', m3)
    check(run(torchrun('train', '--stage', 'language', '--resume', '--device', 'cpu', '--no-progress',
                       '--data-dir', setup['common'][setup['common'].index('--data-dir') + 1], '--models-dir', m3), env))
    w = writes_by_rank(out)
    assert w.get('1', set()) == set() and w['0'], f'writes by rank: {w}'
    h2, h3 = history(setup['m2']), history(m3)
    assert h3['step'] == list(range(1, STEPS + 1)) and h3['val_step'] == [EVAL_EVERY, STEPS]
    # same data, same restored optimizer state: the interrupted-and-resumed run equals the uninterrupted one
    for key in ('train_loss', 'val_loss', 'lr'):
        diff = max(abs(a - b) for a, b in zip(h2[key], h3[key]))
        assert diff < 1e-4, f'{key}: uninterrupted {h2[key]} vs resumed {h3[key]}'
