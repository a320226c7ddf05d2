"The `codellm` command line: the happy path on a micro run, and one clear line for every kind of bad input."
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pytest, torch
from conftest import codellm, MICRO

def assert_one_line_error(r, *fragments, code=1):
    "Exit status `code`, no traceback, and exactly one stderr line that starts with ERROR and names the fix."
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    assert 'Traceback' not in r.stderr, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith('ERROR: ') and 'Run: ' in lines[0], lines[0]
    for f in fragments: assert f in lines[0], (f, lines[0])
    return lines[0]

def test_help_and_module_entry():
    r = codellm('--help', check=True)
    for cmd in ('prepare', 'train', 'generate', 'pipeline'): assert cmd in r.stdout
    r = codellm('train', '--help', check=True)
    for flag in ('--architecture', '--model-size', '--checkpoint', '--batch-size', '--gradient-accumulation-steps', '--use-compile',
                 '--use-rmsnorm', '--use-rope', '--use-amp', '--use-gradient-checkpointing', '--num-epochs', '--steps-per-epoch',
                 '--learning-rate', '--warmup-steps', '--device'):
        assert flag in r.stdout, flag

def test_prepare_writes_processed_data(lang_data):
    for f in ('language_train.npy', 'language_val.npy', 'tokenizer.json', 'language_meta.json', 'language_sample.txt'):
        assert (lang_data / f).is_file(), f
    meta = json.loads((lang_data / 'language_meta.json').read_text())
    assert 'stories generated' in meta['source'] and 'TinyStories' not in meta['source']   # no TinyStories files in the temp raw dir
    ids = np.load(lang_data / 'language_train.npy')
    assert ids.ndim == 1 and ids.max() < meta['vocab_size'] and len(ids) == meta['train_tokens']

def test_prepare_reads_tinystories_files(tmp_path):
    raw, out = tmp_path / 'raw', tmp_path / 'out'
    raw.mkdir()
    stories = [f"Story {i}. Tim saw a cat number {i} and said hello.\nThe end." for i in range(120)]
    (raw / 'TinyStoriesV2-GPT4-train.txt').write_text('\n<|endoftext|>\n'.join(stories[:100]) + '\n<|endoftext|>\n')
    (raw / 'TinyStoriesV2-GPT4-valid.txt').write_text('<|endoftext|>'.join(stories[100:]))
    r = codellm('prepare', 'language', '--raw-dir', raw, '--data-dir', out, '--vocab-size', 400, '--num-stories', 1000, check=True)
    meta = json.loads((out / 'language_meta.json').read_text())
    assert 'TinyStories (TinyStoriesV2-GPT4-train.txt)' in meta['source'] and meta['heldout']['stories']['docs'] == 20   # its valid file

def test_train_writes_checkpoints_and_learns(lang_model):
    m, res = lang_model
    assert (m / 'language_model_best.pth').is_file() and (m / 'language_model_last.pth').is_file()
    assert res['best_val_loss'] < res['val_loss_before'] - 0.5     # it learned something in 12 steps
    ck = torch.load(m / 'language_model_best.pth', weights_only=True)   # the safe loader reads it
    assert ck['stage'] == 'language' and ck['template'] == '<|endoftext|>{prompt}'
    assert not list(m.glob('*.tmp'))

def test_generate_is_seeded_and_prints_continuation_only(lang_model):
    m, _ = lang_model
    args = ('generate', '--checkpoint', m / 'language_model_best.pth', '--prompt', 'Once upon a time', '--max-new-tokens', 15, '--seed', 3)
    a, b = codellm(*args, check=True), codellm(*args, check=True)
    assert a.stdout == b.stdout and a.stdout.strip()
    assert not a.stdout.startswith('Once upon a time')

def test_generate_truncates_long_prompt_with_warning(lang_model):
    m, _ = lang_model
    r = codellm('generate', '--checkpoint', m / 'language_model_best.pth', '--prompt', 'the cat ' * 200, '--max-new-tokens', 5, '--seed', 0, check=True)
    assert 'WARNING' in r.stderr and 'longer than the context' in r.stderr

def test_missing_data(tmp_path):
    r = codellm('train', '--stage', 'language', '--data-dir', tmp_path, '--models-dir', tmp_path)
    assert_one_line_error(r, 'LANGUAGE DATA NOT FOUND', 'Run: codellm prepare language')

def test_damaged_data(lang_data, tmp_path):
    "A token file cut short, a tokenizer that is not JSON or not a tokenizer: one line naming `codellm prepare`."
    d = tmp_path / 'd'; shutil.copytree(lang_data, d)
    train = lambda: codellm('train', '--stage', 'language', '--data-dir', d, '--models-dir', tmp_path / 'm', '--steps-per-epoch', 1, *MICRO)
    raw = (d / 'language_train.npy').read_bytes()
    (d / 'language_train.npy').write_bytes(raw[:len(raw) // 2])
    assert_one_line_error(train(), 'LANGUAGE DATA IS DAMAGED', 'language_train.npy', 'Run: codellm prepare language')
    (d / 'language_train.npy').write_bytes(raw)
    (d / 'tokenizer.json').write_text('{"merges": [[1, 2], ')
    assert_one_line_error(train(), 'LANGUAGE DATA IS DAMAGED', 'tokenizer.json')
    (d / 'tokenizer.json').write_text('{"vocab": 3}')
    assert_one_line_error(train(), 'not a tokenizer', 'Run: codellm prepare language')

def test_unknown_stage(tmp_path):
    assert_one_line_error(codellm('train', '--stage', 'poetry', '--data-dir', tmp_path), "UNKNOWN STAGE 'poetry'", 'language')
    assert_one_line_error(codellm('prepare', 'poetry'), "UNKNOWN STAGE 'poetry'")

def test_missing_truncated_corrupted_checkpoints(lang_model, tmp_path):
    m, _ = lang_model
    gen = lambda p: codellm('generate', '--checkpoint', p, '--prompt', 'hi')
    assert_one_line_error(gen(tmp_path / 'language_model_best.pth'), 'CHECKPOINT NOT FOUND', 'codellm train --stage language')
    data = (m / 'language_model_best.pth').read_bytes()
    (tmp_path / 'cut_model_best.pth').write_bytes(data[:len(data) // 3])
    assert_one_line_error(gen(tmp_path / 'cut_model_best.pth'), 'CORRUPTED OR TRUNCATED')
    (tmp_path / 'noise_model_best.pth').write_bytes(os.urandom(5000))
    assert_one_line_error(gen(tmp_path / 'noise_model_best.pth'), 'CORRUPTED OR TRUNCATED')
    torch.save({'something': torch.zeros(3)}, tmp_path / 'foreign.pth')
    assert_one_line_error(gen(tmp_path / 'foreign.pth'), 'NOT A CODELLM CHECKPOINT')

def test_checkpoint_of_another_architecture_names_both(lang_data, lang_model, tmp_path):
    m, _ = lang_model
    r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path,
                '--checkpoint', m / 'language_model_best.pth', '--architecture', 'moe', '--steps-per-epoch', 1)
    line = assert_one_line_error(r, 'architecture=moe WAS REQUESTED')
    assert 'dense' in line
    r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path,
                '--checkpoint', m / 'language_model_best.pth', '--model-size', 'small', '--steps-per-epoch', 1)
    assert_one_line_error(r, 'model_size=small WAS REQUESTED')

@pytest.mark.parametrize('flag,value', [('--batch-size', 0), ('--steps-per-epoch', -1), ('--num-epochs', 0),
                                        ('--gradient-accumulation-steps', 0), ('--learning-rate', 0), ('--warmup-steps', -5),
                                        ('--block-size', 0)])
def test_zero_or_negative_sizes(lang_data, tmp_path, flag, value):
    r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path, flag, value)
    assert_one_line_error(r)

def test_generate_rejects_nonpositive_length(lang_model):
    m, _ = lang_model
    assert_one_line_error(codellm('generate', '--checkpoint', m / 'language_model_best.pth', '--prompt', 'x', '--max-new-tokens', 0))

def test_corpus_shorter_than_context(tmp_path):
    d = tmp_path / 'd'
    codellm('prepare', 'language', '--num-stories', 20, '--vocab-size', 400, '--data-dir', d, check=True)
    r = codellm('train', '--stage', 'language', '--data-dir', d, '--models-dir', tmp_path, '--block-size', 200000, '--steps-per-epoch', 1)
    assert_one_line_error(r, 'SHORTER THAN THE CONTEXT')
    assert_one_line_error(codellm('prepare', 'language', '--num-stories', 3, '--data-dir', d), 'TOO FEW')

def _ctrl_c_works():
    """In the child: SIGINT back to its default, so Python turns it into KeyboardInterrupt even when this test runs in a
    background job (a non-interactive shell starts those with SIGINT ignored, and Python then installs no handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def test_ctrl_c_keeps_last_checkpoint_and_resume_finishes(lang_data, tmp_path):
    m = tmp_path / 'm'
    cmd = [sys.executable, '-m', 'codellm', 'train', '--stage', 'language', '--data-dir', str(lang_data), '--models-dir', str(m),
           '--steps-per-epoch', '3000', '--block-size', '64', '--batch-size', '4', '--eval-every', '5', '--no-progress']
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                         preexec_fn=_ctrl_c_works)
    last = m / 'language_model_last.pth'
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and p.poll() is None: time.sleep(0.2)
    assert last.exists(), p.communicate()
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)                     # what Ctrl-C sends
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert 'Run: codellm train --stage language --resume' in err and 'Traceback' not in err
    state = torch.load(last, weights_only=True)['train_state']
    stopped = state['step']
    assert 0 < stopped < 3000
    # resume: a short run, so shrink the remaining steps by editing nothing: the saved config says 3000 steps,
    # so we check it continues from `stopped` by interrupting again after it has made progress
    p = subprocess.Popen(cmd + ['--resume'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                         preexec_fn=_ctrl_c_works)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        time.sleep(0.3)
        try: now = torch.load(last, weights_only=True)['train_state']['step']
        except Exception: continue                    # being replaced right now
        if now >= stopped + 10: break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    st = torch.load(last, weights_only=True)['train_state']
    assert st['step'] > stopped and st['history']['step'][0] == 1   # the history continues the first run's
    assert len(st['history']['step']) == st['step']

def test_resume_with_more_epochs_extends_a_finished_run(lang_data, tmp_path):
    base = ['train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path, '--steps-per-epoch', 4, *MICRO]
    codellm(*base, check=True)
    assert torch.load(tmp_path / 'language_model_last.pth', weights_only=True)['train_state']['step'] == 4
    codellm(*base, '--resume', '--num-epochs', 2, check=True)            # the saved config said 1 epoch
    st = torch.load(tmp_path / 'language_model_last.pth', weights_only=True)['train_state']
    assert st['step'] == 8 and st['history']['step'] == list(range(1, 9))

def test_seed_zero_is_a_seed(lang_data, tmp_path):
    "--seed 0 initialises the model differently from the default seed (0 is not 'unset')."
    before = {}
    for seed in (0, 1337):
        r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path / str(seed),
                    '--steps-per-epoch', 1, '--seed', seed, *MICRO, check=True)
        before[seed] = json.loads(r.stdout)['val_loss_before']                # the loss at initialisation
    assert before[0] != before[1337]

def test_resume_without_last_checkpoint(lang_data, tmp_path):
    r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path, '--resume')
    assert_one_line_error(r, 'NOTHING TO RESUME')

def test_moe_and_option_flags_train(lang_data, tmp_path):
    r = codellm('train', '--stage', 'language', '--data-dir', lang_data, '--models-dir', tmp_path, '--architecture', 'moe',
                '--no-use-rope', '--no-use-rmsnorm', '--use-gradient-checkpointing', '--gradient-accumulation-steps', 2,
                '--steps-per-epoch', 3, *MICRO, check=True)
    ck = torch.load(tmp_path / 'language_model_best.pth', weights_only=True)
    assert (ck['config']['architecture'], ck['config']['pos'], ck['config']['norm']) == ('moe', 'learned', 'layernorm')

def test_prepare_language_writes_heldout_sets_and_checks_mix(lang_data, tmp_path):
    meta = json.loads((lang_data / 'language_meta.json').read_text())
    for name in meta['heldout']: assert (lang_data / f'language_heldout_{name}.npy').is_file(), name
    assert 'stories' in meta['heldout']                            # the generator's own new stories, always
    assert_one_line_error(codellm('prepare', 'language', '--mix', 'stories:1,poems:2', '--data-dir', tmp_path), 'BAD --mix', '--mix')
