"""Adding a stage touches its own module only: a toy stage with its own options, batches, loss and model kind, registered
here, goes through `codellm prepare`, `train`, `--resume`, `evaluate` and `pipeline` with no change to the CLI or the Trainer."""
import json
from dataclasses import dataclass
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from codellm.checkpoint import MODEL_KINDS, load_checkpoint, register_model_kind
from codellm.cli import main
from codellm.core import Paths, read_data
from codellm.data import save_tokens
from codellm.model import GPT, GPTConfig
from codellm.stage import EXPERIMENTS, STAGES, Experiment, Options, Stage, option, register_experiment, register_stage, result_row
from codellm.tokenizer import BPETokenizer

T = 12          # tokens per sequence


class Scorer(torch.nn.Module):
    "A language model with a scalar head: one score per sequence (the shape of a reward model)."
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.lm, self.head = GPT(cfg), torch.nn.Linear(cfg.n_embd, 1)
    @property
    def config(self): return self.lm.config
    def forward(self, x): return self.head(self.lm.hidden(x)[:, -1]).squeeze(-1)     # (B,)


class PairData:
    "Batches of preferred (`a`) and rejected (`b`) sequences: the protocol of codellm.data, with a dict of its own."
    def __init__(self, arr): self.a, self.b = arr[0], arr[1]
    def sample(self, batch_size, generator): return torch.randint(len(self.a), (batch_size,), generator=generator).numpy()
    def batch(self, idx, device='cpu'):
        return {'a': torch.as_tensor(np.asarray(self.a[idx]), dtype=torch.long, device=device),
                'b': torch.as_tensor(np.asarray(self.b[idx]), dtype=torch.long, device=device)}
    def eval_indices(self, n): return np.arange(min(n, len(self.a)))


def accuracy(model, data) -> float:
    b = data.batch(data.eval_indices(10_000))
    with torch.no_grad(): return float((model(b['a']) > model(b['b'])).float().mean())


@dataclass
class ToyPrepare(Options):
    n: int = option(64, 'pairs to write')

@dataclass
class ToyTrain(Options):
    margin: float = option(0.0, 'the preferred score must win by this much')

@dataclass
class ToyEvaluate(Options):
    n: int = option(32, 'pairs to score')


class Toy(Stage):
    name, title, order, baseline_name = 'toy', 'A toy preference stage', 99, 'chance'
    PrepareOptions, TrainOptions, EvaluateOptions = ToyPrepare, ToyTrain, ToyEvaluate
    train_defaults = dict(batch_size=8, learning_rate=3e-3, warmup_steps=2, steps_per_epoch=6, eval_every=3, eval_windows=32)

    def prepare(self, paths, opts, seed=1337, verbose=True):
        rng = np.random.default_rng(seed)
        paths.data.mkdir(parents=True, exist_ok=True)
        tok = BPETokenizer.train('a b c d ' * 20, vocab_size=300)
        tok.save(paths.tokenizer)
        for split, n in (('train', opts.n), ('val', opts.n // 2)):
            a = rng.integers(0, 20, (n, T)); a[:, -3:] = 7            # preferred sequences end in 7s
            save_tokens(paths.data_file(self.name, f'{split}.npy'), np.stack([a, rng.integers(0, 20, (n, T))]).reshape(2, -1))
        meta = dict(stage=self.name, source='random pairs', pairs=opts.n, tokenizer=tok.fingerprint())
        paths.meta(self.name).write_text(json.dumps(meta))
        return meta

    def load_data(self, paths, tokenizer, block_size, meta, opts):
        pairs = lambda p: PairData(np.asarray(read_data(p)).reshape(2, -1, T))
        return pairs(paths.train(self.name)), pairs(paths.val(self.name))

    def model_for(self, model, tokenizer, opts): return Scorer(model.config)

    def make_trainer(self, model, train, val, cfg, callbacks, opts):
        self.margin = opts.margin
        return super().make_trainer(model, train, val, cfg, callbacks, opts)

    def loss_fn(self, model, batch):
        diff = model(batch['a']) - model(batch['b'])
        return -F.logsigmoid(diff - self.margin).mean(), {'acc': float((diff > 0).float().mean())}

    def evaluate(self, checkpoint, paths, opts):
        ck = load_checkpoint(checkpoint)
        assert ck.kind == 'toy_scorer' and isinstance(ck.model, Scorer)
        val = self.load_data(paths, ck.tokenizer, None, {}, None)[1]
        torch.manual_seed(0)
        return result_row(self.name, 'preferred scored higher (share)', baseline=0.5, before=accuracy(Scorer(ck.config), val),
                          ours=accuracy(ck.model, val), better='higher')


@dataclass
class MarginOptions(Options):
    margins: tuple = option(('0', '1'), 'margins to compare')

class ToyMargins(Experiment):
    "A comparison of the toy chapter: no checkpoint, one result row."
    name, title, after, Options = 'toy_margins', 'Margins compared', 'toy', MarginOptions
    def run(self, paths, opts, progress=True):
        return result_row(self.name, 'margins compared (count)', baseline=0, before=0, ours=len(opts.margins), better='higher')


@pytest.fixture
def toy(tmp_path):
    register_model_kind('toy_scorer', Scorer, lambda c: Scorer(GPTConfig.from_dict(c)), lambda m: m.config.to_dict())
    register_stage(Toy); register_experiment(ToyMargins)
    yield Paths.of(tmp_path / 'data', tmp_path / 'models', tmp_path / 'raw')
    STAGES.pop('toy'); EXPERIMENTS.pop('toy_margins'); MODEL_KINDS.pop('toy_scorer')


def run(capsys, *argv):
    "Run `codellm ARGV` in this process; (exit code, stdout, stderr)."
    try: code = main([str(a) for a in argv])
    except SystemExit as e: code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_toy_stage_end_to_end(toy, capsys):
    dirs = ['--data-dir', toy.data, '--models-dir', toy.models]
    code, out, _ = run(capsys, 'prepare', 'toy', '--n', 48, *dirs)
    assert code == 0 and json.loads(out)['pairs'] == 48
    code, out, err = run(capsys, 'prepare', 'toy', '--margin', 1, *dirs)            # a train option given to prepare
    assert code == 2 and 'unrecognized arguments: --margin' in err

    small = ['--model-size', 'tiny', '--block-size', T, '--no-progress', *dirs]
    code, out, err = run(capsys, 'train', '--stage', 'toy', '--margin', 0.5, *small)
    assert code == 0, err
    res = json.loads(out)
    assert res['steps'] == 6 and toy.best('toy').is_file()
    last = load_checkpoint(toy.last('toy'))
    assert last.kind == 'toy_scorer' and last.meta['stage_options'] == {'margin': 0.5}     # the stage's own option was used and saved

    code, out, err = run(capsys, 'train', '--stage', 'toy', '--resume', '--num-epochs', 2, '--no-progress', *dirs)
    assert code == 0, err
    assert json.loads(out)['steps'] == 12                                           # resumed at 6, extended to 12
    assert load_checkpoint(toy.last('toy')).meta['stage_options'] == {'margin': 0.5}

    code, out, err = run(capsys, 'evaluate', '--stage', 'toy', '--n', 16, *dirs)
    assert code == 0, err
    row = json.loads(out)
    assert {k: row[k] for k in ('stage', 'baseline', 'better')} == {'stage': 'toy', 'baseline': 0.5, 'better': 'higher'}
    assert row['ours'] > row['before'] and row['ours'] >= 0.9                       # it learned the preference

    code, out, err = run(capsys, 'experiment', 'toy_margins', '--margins', 0, 1, 2, *dirs)
    assert code == 0 and json.loads(out)['ours'] == 3, err

    code, out, err = run(capsys, 'pipeline', '--stages', 'toy_margins,toy', '--no-progress', *dirs)
    assert code == 0, err
    rows = json.loads(toy.results.read_text())
    assert [r['stage'] for r in rows] == ['toy', 'toy_margins'] and rows[0]['ours'] >= 0.9     # the experiment after its stage
    assert rows[1]['title'] == 'Margins compared' and rows[1]['ours'] == 2
    assert 'preferred scored higher' in out and 'margins compared' in out


def test_unknown_and_misplaced_names(capsys):
    code, _, err = run(capsys, 'train', '--stage', 'staged_vs_joint')
    assert code == 1 and err.strip() == "ERROR: 'staged_vs_joint' IS AN EXPERIMENT, NOT A STAGE! Run: codellm experiment staged_vs_joint"
    code, _, err = run(capsys, 'prepare', 'code', '--num-stories', 5)
    assert code == 2 and 'unrecognized arguments: --num-stories 5' in err
    code, _, err = run(capsys, 'experiment', 'nonsense')
    assert code == 1 and err.startswith("ERROR: UNKNOWN EXPERIMENT 'nonsense'!")


class ToyLoop(Toy):
    "The same task with a loop of its own (as PPO will have): each step is two updates, and the loop keeps state of its own."
    name, title = 'toy_loop', 'A toy stage with its own loop'
    def make_trainer(self, model, train, val, cfg, callbacks, opts):
        from codellm.training import Trainer
        class TwoUpdates(Trainer):
            def train_step(self):
                super().train_step(); self.step -= 1; super().train_step()          # two updates count as one step
                self.history['step'].pop(); self.history['train_loss'].pop(); self.history['lr'].pop()
                self.extra_state['updates'] = self.extra_state.get('updates', 0) + 2
        self.margin = opts.margin
        return TwoUpdates(model, train, val, cfg, callbacks, loss_fn=self.loss_fn, name=self.name)


def test_own_loop_keeps_resume_and_checkpoints(tmp_path, capsys):
    register_model_kind('toy_scorer', Scorer, lambda c: Scorer(GPTConfig.from_dict(c)), lambda m: m.config.to_dict())
    register_stage(ToyLoop)
    try:
        dirs = ['--data-dir', tmp_path / 'data', '--models-dir', tmp_path / 'models']
        assert run(capsys, 'prepare', 'toy_loop', *dirs)[0] == 0
        code, out, err = run(capsys, 'train', '--stage', 'toy_loop', '--model-size', 'tiny', '--block-size', T, '--no-progress', *dirs)
        assert code == 0, err
        code, out, err = run(capsys, 'train', '--stage', 'toy_loop', '--resume', '--num-epochs', 2, '--no-progress', *dirs)
        assert code == 0 and json.loads(out)['steps'] == 12, err
        state = load_checkpoint(tmp_path / 'models' / 'toy_loop_model_last.pth').train_state
        assert state['extra'] == {'updates': 24} and state['history']['step'] == list(range(1, 13))
    finally:
        STAGES.pop('toy_loop'); MODEL_KINDS.pop('toy_scorer')
