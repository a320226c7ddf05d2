"Stage 2 through the command line: prepare, fine-tune from stage 1, generate a script; and its errors."
import json
import numpy as np
import pytest, torch
from conftest import codellm
from test_cli import assert_one_line_error

@pytest.fixture(scope='module')
def stage2(tmp_path_factory):
    d, m = tmp_path_factory.mktemp('d2'), tmp_path_factory.mktemp('m2')
    codellm('prepare', 'language', '--num-stories', 300, '--vocab-size', 700, '--data-dir', d, check=True)
    codellm('train', '--stage', 'language', '--data-dir', d, '--models-dir', m, '--steps-per-epoch', 4, '--batch-size', 4,
            '--eval-every', 2, '--no-progress', check=True)
    r = codellm('prepare', 'code', '--data-dir', d, '--models-dir', m, check=True)
    return d, m, json.loads(r.stdout)

def test_prepare_code_writes_masked_data(stage2):
    d, m, meta = stage2
    assert meta['pairs'] >= 1000 and meta['scripts'] >= 0 and meta['block_size'] == 256
    arr = np.load(d / 'code_train.npy')
    assert arr.ndim == 2 and arr.shape[0] == 2 and set(np.unique(arr[1])) <= {0, 1}
    assert 0.3 < arr[1].mean() < 1.0               # the task text is masked out, the scripts are trained on
    assert (d / 'code_sample.txt').read_text().count('TASK:') >= 3
    assert json.loads((d / 'code_meta.json').read_text())['tokenizer'] == json.loads((d / 'language_meta.json').read_text())['tokenizer']

def test_pairs_come_first_and_outweigh_the_scripts(stage2):
    "code_train.npy: pairs, then harvested scripts; training draws PAIR_SHARE of its windows from the pairs."
    from codellm.stages.code_finetuning import code_train_data, PAIR_SHARE, TEXT_SHARE
    from codellm.tokenizer import BPETokenizer
    from codellm.data import TokenData, MixedData
    d, m, meta = stage2
    tok = BPETokenizer.load(d / 'tokenizer.json')
    ids = np.load(d / 'code_train.npy')[0]
    k, user = meta['pair_tokens'], tok.special('<|user|>')
    assert 0 < k <= len(ids)
    starts = np.concatenate([[0], np.flatnonzero(ids[:-1] == tok.eot_id) + 1])
    assert all(ids[s] == user for s in starts if s < k)                       # every document before k is a pair
    assert not any(ids[s] == user for s in starts if k <= s < len(ids))      # none after it
    data = code_train_data(TokenData.from_npy(d / 'code_train.npy', 256, align_to_docs=True, eot_id=tok.eot_id), meta)
    if meta['scripts']:
        src = data.sample(4000, torch.Generator().manual_seed(0)) // MixedData._SHIFT
        assert abs((src == 0).mean() - PAIR_SHARE * (1 - TEXT_SHARE if meta['text_tokens'] else 1)) < 0.03
        if meta['text_tokens']: assert abs((src == 2).mean() - TEXT_SHARE) < 0.03
        b = data.batch(data.sample(8, torch.Generator().manual_seed(1)))
        x, y = b['x'], b['y']
        assert x.shape == y.shape == (8, 256) and (y != -100).any()

def test_train_code_from_language_and_generate(stage2):
    d, m, _ = stage2
    r = codellm('train', '--stage', 'code', '--checkpoint', m / 'language_model_best.pth', '--data-dir', d, '--models-dir', m,
                '--steps-per-epoch', 4, '--batch-size', 4, '--eval-every', 2, '--no-progress', check=True)
    res = json.loads(r.stdout)
    assert res['best_val_loss'] < res['val_loss_before']
    ck = torch.load(m / 'code_model_best.pth', weights_only=True)
    assert ck['stage'] == 'code' and ck['template'] == '<|user|>{prompt}<|end|><|assistant|>'
    g = codellm('generate', '--checkpoint', m / 'code_model_best.pth', '--prompt', 'count the lines in every .txt file',
                '--max-new-tokens', 30, '--seed', 0, check=True)
    assert '<|user|>' not in g.stdout and 'count the lines in every' not in g.stdout   # continuation only, template applied

def test_code_training_without_language_checkpoint(stage2, tmp_path):
    d, _, _ = stage2
    r = codellm('train', '--stage', 'code', '--data-dir', d, '--models-dir', tmp_path)
    assert_one_line_error(r, 'CHECKPOINT NOT FOUND', 'language_model_best.pth', 'Run: codellm train --stage language')

def test_code_training_without_code_data(tmp_path):
    r = codellm('train', '--stage', 'code', '--data-dir', tmp_path, '--models-dir', tmp_path)
    assert_one_line_error(r, 'CODE DATA NOT FOUND', 'Run: codellm prepare code')

def test_prepare_code_without_tokenizer(tmp_path):
    r = codellm('prepare', 'code', '--data-dir', tmp_path, '--models-dir', tmp_path)
    assert_one_line_error(r, 'TOKENIZER NOT FOUND', 'Run: codellm prepare language')

def test_data_from_another_tokenizer_is_refused(stage2, tmp_path):
    d, m, _ = stage2
    other = tmp_path / 'other'
    codellm('prepare', 'language', '--num-stories', 100, '--vocab-size', 500, '--data-dir', other, check=True)
    r = codellm('train', '--stage', 'language', '--checkpoint', m / 'language_model_best.pth', '--data-dir', other,
                '--models-dir', tmp_path, '--steps-per-epoch', 1)
    assert_one_line_error(r, 'ANOTHER TOKENIZER', 'Run: codellm prepare language')



def _fresh_data_dir(stage2, tmp_path):
    d, m, _ = stage2
    import shutil
    d2 = tmp_path / 'd'; d2.mkdir()
    for f in ('tokenizer.json', 'language_meta.json'): shutil.copy(d / f, d2 / f)
    return d2, m


def test_prepare_code_with_manuals(stage2, tmp_path):
    "--manual-pairs/--manual-text: pairs from the pages beside the template pairs, the text after the scripts as its own source."
    from codellm.stages.code_finetuning import code_train_data
    from codellm.stages.manuals import man_files
    from codellm.data import TokenData, MixedData
    d2, m = _fresh_data_dir(stage2, tmp_path)
    r = codellm('prepare', 'code', '--data-dir', d2, '--models-dir', m, '--manual-pairs', 200, '--manual-text', 300000,
                '--n-pairs', 500, check=True)
    meta = json.loads(r.stdout)
    assert meta['manual_note'] and meta['pairs'] == 500 + meta['manual_pairs']
    if not man_files():
        assert meta['manual_pairs'] == 0 and meta['text_tokens'] == 0 and 'no manual pages' in meta['manual_note']
        pytest.skip('no manual pages on this machine: the fallback was checked, the mix cannot be')
    assert meta['manual_pairs'] == 200 and meta['manual_pair_stats']['commands'] >= 20 and 0 < meta['manual_text_bytes'] <= 300000
    assert (d2 / 'code_manuals.json').is_file()                     # the harvest is cached beside the data
    arr = np.load(d2 / 'code_train.npy')
    assert arr[1][-meta['text_tokens']:].mean() > 0.9              # plain documents: trained on, like the scripts
    tr = TokenData.from_npy(d2 / 'code_train.npy', 256, align_to_docs=True)
    src = code_train_data(tr, meta, 0.95, 0.2).sample(4000, torch.Generator().manual_seed(0)) // MixedData._SHIFT
    assert abs((src == 2).mean() - 0.2) < 0.03
    src = code_train_data(tr, meta, 0.95, 0.0).sample(2000, torch.Generator().manual_seed(0)) // MixedData._SHIFT
    assert (src == 2).sum() == 0                                    # --text-share 0: never drawn


def test_prepare_code_without_manuals(stage2, tmp_path):
    "--manual-pairs 0 --manual-text 0: no manual pairs, no text, no harvest."
    d2, m = _fresh_data_dir(stage2, tmp_path)
    r = codellm('prepare', 'code', '--data-dir', d2, '--models-dir', m, '--manual-pairs', 0, '--manual-text', 0, '--n-pairs', 500, check=True)
    meta = json.loads(r.stdout)
    assert meta['manual_pairs'] == 0 and meta['text_tokens'] == 0 and meta['manual_note'] == 'manual pages not used'
    assert not (d2 / 'code_manuals.json').exists()
