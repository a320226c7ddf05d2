"""Tests for stage 4 (`codellm.stages.rlhf`, `codellm.rlhf.*`) that need no trained model: a random micro model stands
in for the stage-3 checkpoint, and every command of the stage runs on it through the CLI: `prepare rlhf`, `train --stage
reward`, `train --stage rlhf` with each method, `evaluate`, `codellm reward`, and the one-line errors of bad input."""
import json, shutil
from pathlib import Path

import pytest
import torch

from codellm.checkpoint import save_checkpoint
from codellm.chat_format import CHAT_TEMPLATE
from codellm.model import GPT, tiny_test_config
from codellm.stage import load_stages
from codellm.tokenizer import BPETokenizer
from codellm.rlhf.preferences import make_preferences
from conftest import codellm, one_line_error


def micro_checkpoint(path: Path, vocab_size: int = 400, seed: int = 0) -> BPETokenizer:
    "A random micro GPT (context 256) with a tokenizer trained on preference pairs, saved as a stage-3 checkpoint."
    prefs = make_preferences(20, 4, 4, seed=seed)
    tok = BPETokenizer.train([p['prompt'] + p['chosen'] + p['rejected'] for p in prefs['train']], vocab_size=vocab_size)
    torch.manual_seed(seed)
    save_checkpoint(path, GPT(tiny_test_config(vocab_size=tok.vocab_size, block_size=256)), tok, 'tool_calling', CHAT_TEMPLATE)
    return tok


@pytest.fixture(scope='module')
def stage4(tmp_path_factory):
    "Data and models folders with a micro stage-3 checkpoint, prepared pairs and a (barely) trained reward model."
    d, m = tmp_path_factory.mktemp('data'), tmp_path_factory.mktemp('models')
    micro_checkpoint(m / 'tool_calling_model_best.pth')
    dirs = ['--data-dir', d, '--models-dir', m]
    codellm('prepare', 'rlhf', '--n-train', 40, '--n-val', 10, '--n-hard', 10, '--data-dir', d, '--checkpoint', m / 'tool_calling_model_best.pth', check=True)
    codellm('train', '--stage', 'reward', *dirs, '--steps-per-epoch', 2, '--eval-every', 2, '--batch-size', 4, '--no-progress', check=True)
    return d, m, dirs


def test_stages_declared():
    st = load_stages()
    assert list(st).index('tool_calling') < list(st).index('reward') < list(st).index('rlhf')
    assert (st['reward'].init_from, st['reward'].data_stage, st['rlhf'].init_from) == ('tool_calling', 'rlhf', 'tool_calling')


def test_prepare_writes_the_guides_files(stage4):
    d, _, _ = stage4
    names = {f.name for f in Path(d).iterdir()}
    assert {'rlhf_train_chosen.npy', 'rlhf_train_rejected.npy', 'rlhf_preferences.json', 'rlhf_meta.json',
            'rlhf_val_chosen.npy', 'rlhf_hard_rejected.npy'} <= names
    meta = json.loads((Path(d) / 'rlhf_meta.json').read_text())
    assert meta['pairs'] == {'train': 40, 'val': 10, 'hard': 10} and set(meta['baselines']) == {'train', 'val', 'hard'}


def test_reward_model_and_command(stage4, tmp_path):
    d, m, dirs = stage4
    assert (Path(m) / 'reward_model_best.pth').is_file()
    row = json.loads(codellm('evaluate', '--stage', 'reward', *dirs, check=True).stdout)
    assert row['metric'] == 'pair accuracy, hard split' and 0 <= row['ours'] <= 1 and row['baseline'] == row['hard_length_baseline']
    r = json.loads(codellm('reward', '--models-dir', m, '--prompt', 'List the files.', '--response', '', check=True).stdout)
    assert set(r) == {'reward'} and isinstance(r['reward'], float)                  # an empty answer scores
    f = tmp_path / 'pairs.jsonl'
    good = json.dumps(dict(prompt='List the files.', chosen='ls "$dir"\n', rejected='ls $dir\n'))
    f.write_text('\n'.join([good, 'not json', '{"prompt": 1}', '', good]))
    r = codellm('reward', '--models-dir', m, '--pairs', f, check=True)
    out = json.loads(r.stdout)
    assert (out['n'], out['malformed'], len(out['margins'])) == (2, 2, 2) and out['accuracy'] in (0.0, 1.0)
    assert out['margins'][0] == out['margins'][1] and '2 malformed' in r.stderr


@pytest.mark.parametrize('method', ['ppo', 'grpo', 'dpo'])
def test_policy_methods_run_and_write_the_guides_file(stage4, method):
    d, m, dirs = stage4
    r = codellm('train', '--stage', 'rlhf', *dirs, '--method', method, '--sft-steps', 2, '--steps-per-epoch', 1, '--eval-every', 1,
                '--rollout-batch', 4, '--minibatch', 2, '--max-new-tokens', 12, '--n-eval', 2, '--batch-size', 2, '--no-progress', check=True)
    res = json.loads(r.stdout)
    assert res['stage'] == 'rlhf' and res['steps'] == 1 and Path(res['best_path']).name == 'rlhf_model_best.pth'
    assert (Path(m) / 'rlhf_reference.pth').is_file()
    log = json.loads((Path(m) / 'rlhf_train_log.json').read_text())
    assert [e["step"] for e in log["history"]["eval"]] == [0, 1] and {'judge_score', 'kl', 'findings', 'validity'} <= set(log['history']['eval'][0])
    if method != 'dpo': assert {'reward', 'kl', 'entropy', 'length', 'clipfrac', 'vf_loss'} <= set(log['history']['rl'][0])
    if method == 'ppo':     # resume: the saved options (reference, reward model) and the value head come back
        r = codellm('train', '--stage', 'rlhf', *dirs, '--resume', '--num-epochs', 2, '--no-progress', check=True)
        assert json.loads(r.stdout)['steps'] == 2
        log = json.loads((Path(m) / 'rlhf_train_log.json').read_text())
        assert [x['step'] for x in log['history']['rl']] == [1, 2]


def test_policy_evaluation_row(stage4):
    d, m, dirs = stage4
    if not (Path(m) / 'rlhf_model_best.pth').is_file():
        codellm('train', '--stage', 'rlhf', *dirs, '--sft-steps', 0, '--steps-per-epoch', 1, '--eval-every', 1, '--rollout-batch', 4,
                '--minibatch', 2, '--max-new-tokens', 12, '--n-eval', 2, '--no-progress', check=True)
    row = json.loads(codellm('evaluate', '--stage', 'rlhf', *dirs, '--n', 2, '--no-forgetting', '--max-new-tokens', 12, check=True).stdout)
    assert row['metric'] == 'judge findings per answer, held-out requests' and row['better'] == 'lower'
    assert row['n'] == 2 + 2 + 16 and row['baseline'] is not None and set(row['groups']['ours']) == {'val', 'hard', 'own'}


def test_bad_input_is_one_line(stage4, tmp_path):
    d, m, dirs = stage4
    empty = tmp_path / 'empty'; empty.mkdir()
    one_line_error(codellm('train', '--stage', 'reward', '--data-dir', empty, '--models-dir', m), 'RLHF DATA NOT FOUND', 'codellm prepare rlhf')
    one_line_error(codellm('train', '--stage', 'rlhf', '--data-dir', empty, '--models-dir', m), 'RLHF DATA NOT FOUND', 'codellm prepare rlhf')
    no_rm = tmp_path / 'no_rm'; no_rm.mkdir(); shutil.copy(Path(m) / 'tool_calling_model_best.pth', no_rm)
    one_line_error(codellm('train', '--stage', 'rlhf', '--data-dir', d, '--models-dir', no_rm), 'REWARD MODEL NOT FOUND', 'codellm train --stage reward')
    one_line_error(codellm('reward', '--models-dir', no_rm, '--prompt', 'a', '--response', 'b'), 'codellm train --stage reward')
    no_policy = tmp_path / 'no_policy'; no_policy.mkdir()
    one_line_error(codellm('train', '--stage', 'rlhf', '--data-dir', d, '--models-dir', no_policy), 'NOT FOUND', 'codellm train --stage tool_calling')
    other = tmp_path / 'other.pth'; micro_checkpoint(other, vocab_size=350, seed=1)     # another tokenizer
    one_line_error(codellm('train', '--stage', 'rlhf', *dirs, '--checkpoint', other), 'DIFFERENT TOKENIZERS', str(other), 'reward_model_best.pth')
    one_line_error(codellm('reward', '--models-dir', m, '--prompt', 'only a prompt'), '--response')
    one_line_error(codellm('reward', '--models-dir', m, '--pairs', tmp_path / 'missing.jsonl'), 'PAIRS FILE NOT FOUND')
    one_line_error(codellm('reward', '--checkpoint', Path(m) / 'tool_calling_model_best.pth', '--prompt', 'a', '--response', 'b'), 'IS NOT A REWARD MODEL')
    one_line_error(codellm('train', '--stage', 'rlhf', *dirs, '--method', 'ppo', '--rollout-batch', 0, '--sft-steps', 0), '--rollout-batch')
