"Stage 8 (domains): prepare, full and LoRA training, adapters applied and refused, perplexity, the evaluation row, bad input."
import json
import numpy as np
import pytest
import torch
from conftest import codellm, one_line_error
from codellm.core import CodeLLMError, Paths
from codellm.tokenizer import BPETokenizer
from codellm.chat_format import CHAT_TEMPLATE
from codellm.stages import domain_data as dd
from codellm.stages.domains import (Domain, prepare_domain, masked_loss, BigramLM, evaluate_domain, with_adapter, domain_template,
                                    text_perplexity, domain_prompt_template)
from codellm.checkpoint import load_checkpoint
from codellm import lora

TOK = BPETokenizer([])                     # bytes only: an untrained micro model is enough to test the plumbing
TRAIN = ['--batch-size', '4', '--steps-per-epoch', '6', '--eval-every', '3', '--eval-windows', '4', '--no-progress']

def _random_base(path, seed=0):
    from codellm.model import GPT, tiny_test_config
    from codellm.checkpoint import save_checkpoint
    torch.manual_seed(seed)
    return save_checkpoint(path, GPT(tiny_test_config(vocab_size=TOK.vocab_size, block_size=1024)), TOK, 'multimodal', CHAT_TEMPLATE)

@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp('domain')
    data, models = root / 'data', root / 'models'
    data.mkdir(); models.mkdir()
    _random_base(models / 'multimodal_model_best.pth')
    _random_base(models / 'other_model_best.pth', seed=1)
    meta = prepare_domain(Paths.of(data_dir=data, models_dir=models), n_pairs=40, n_val_pairs=10, n_template_files=10,
                          max_bytes=6000, roots=[str(root / 'nothing')], verbose=False)
    return data, models, meta

def test_stage_declares_the_contract():
    st = Domain()
    assert (st.name, st.order, st.init_from) == ('domain', 8, 'multimodal')
    assert list(st.TrainOptions.__dataclass_fields__) == ['domain', 'lora', 'lora_rank', 'lora_alpha', 'lora_targets', 'replay']
    assert domain_template('web') == '<|domain:web|>' + CHAT_TEMPLATE
    assert domain_prompt_template(domain_template('web'), 'mobile') == '<|domain:mobile|>' + CHAT_TEMPLATE

def test_prepare_writes_every_domain(prepared):
    data, _, meta = prepared
    for d in dd.DOMAINS:
        for part in ('train.npy', 'val.npy', 'sample.txt'): assert (data / f'domain_{d}_{part}').is_file(), (d, part)
        secs = meta['domains'][d]['val_sections']
        assert list(secs) == ['template', 'own_words', 'files'] and secs['own_words'][1] > secs['own_words'][0]
        ids = np.load(data / f'domain_{d}_train.npy')[0]
        assert TOK.special(dd.domain_tag(d)) in ids                       # every example carries its domain's token

def test_masked_loss_scores_every_token_once():
    from codellm.model import GPT, tiny_test_config
    torch.manual_seed(0)
    m = GPT(tiny_test_config(vocab_size=50, block_size=16))
    ids = list(range(40))
    loss, n = masked_loss(m, ids)
    assert n == 39 and 0 < loss < 10
    assert masked_loss(m, ids, [0] * 20 + [1] * 20)[1] == 20

def test_bigram_beats_unigram_on_repetitive_text():
    seq = [0, 1, 2, 3] * 50
    bg = BigramLM(8).fit(seq)
    assert bg.loss(seq) < 0.5 < np.log(4)                              # knows what follows what; a unigram cannot

def test_full_and_lora_training_and_adapters(prepared, tmp_path):
    data, models, _ = prepared
    base = models / 'multimodal_model_best.pth'
    r = codellm('train', '--stage', 'domain', '--domain', 'web', '--checkpoint', base, '--data-dir', data, '--models-dir', models, *TRAIN, check=True)
    out = json.loads(r.stdout)
    assert (models / 'domain_web_model_best.pth').is_file() and (models / 'domain_model_best.pth').is_file()
    assert load_checkpoint(models / 'domain_model_best.pth').template == domain_template('web')
    r = codellm('train', '--stage', 'domain', '--domain', 'web', '--lora', '--lora-rank', '4', '--checkpoint', base,
                '--data-dir', data, '--models-dir', models, *TRAIN, check=True)
    ad = models / 'domain_web_lora.pth'
    assert json.loads(r.stdout)['best_path'] == str(ad)
    assert ad.stat().st_size < 0.5 * (models / 'domain_web_model_best.pth').stat().st_size
    obj = torch.load(ad, weights_only=True)
    assert obj['rank'] == 4 and obj['base_fingerprint'] == lora.weights_fingerprint(load_checkpoint(base).model)
    spec = with_adapter(load_checkpoint(base), ad)
    assert spec.template == domain_template('web')
    r = codellm('generate', '--checkpoint', base, '--adapter', ad, '--prompt', 'a button', '--max-new-tokens', 5, '--seed', 0, check=True)
    one_line_error(codellm('generate', '--checkpoint', models / 'other_model_best.pth', '--adapter', ad, '--prompt', 'x'), 'BELONGS TO', 'other_model_best.pth')
    one_line_error(codellm('chat', '--checkpoint', models / 'other_model_best.pth', '--adapter', ad, '--prompt', 'x'), 'BELONGS TO')
    one_line_error(codellm('chat', '--rag', tmp_path, '--adapter', ad, '--prompt', 'x'), '--adapter DOES NOT COMBINE WITH --rag')
    f = tmp_path / 'page.html'; f.write_text('<html><body><p>hello</p></body></html>\n')
    r = codellm('perplexity', '--checkpoint', base, '--adapter', ad, '--domain', 'web', '--file', f, check=True)
    got = json.loads(r.stdout)
    assert set(got) == {'tokens', 'loss', 'ppl'} and got['tokens'] == len(f.read_bytes())
    assert abs(np.exp(got['loss']) - got['ppl']) < 1e-2 * got['ppl']
    assert got == text_perplexity(spec, f.read_text(), 'web')
    row = evaluate_domain(base, Paths.of(data_dir=data, models_dir=models), adapter=ad, max_tokens=600)
    assert row['better'] == 'lower' and row['ours'] is not None and row['baseline'] is not None and row['before'] is not None
    assert 'web_own_words_ours' in row and 'general_change' not in row             # no general sets prepared here

def test_one_multi_domain_model(prepared):
    data, models, _ = prepared
    d = ['--data-dir', data, '--models-dir', models, '--checkpoint', models / 'multimodal_model_best.pth']
    r = codellm('train', '--stage', 'domain', '--domain', 'all', *d, *TRAIN, check=True)
    assert json.loads(r.stdout)['best_path'].endswith('domain_all_model_best.pth')
    ck = load_checkpoint(models / 'domain_model_best.pth')
    assert ck.template == CHAT_TEMPLATE and ck.meta['domain'] == 'all'
    one_line_error(codellm('train', '--stage', 'domain', '--domain', 'all', '--replay', '0.1', *d, *TRAIN),
                   'LANGUAGE DATA NOT FOUND', 'codellm prepare language')

def test_bad_input_is_one_line(prepared, tmp_path):
    data, models, _ = prepared
    base = models / 'multimodal_model_best.pth'
    d = ['--data-dir', data, '--models-dir', models]
    one_line_error(codellm('train', '--stage', 'domain', '--domain', 'gaming', *d), 'UNKNOWN DOMAIN', 'web, data_science, devops, mobile, backend')
    one_line_error(codellm('train', '--stage', 'domain', '--domain', 'web', '--data-dir', tmp_path / 'none', '--models-dir', models),
                   'DOMAIN DATA NOT FOUND', 'codellm prepare domain')
    for rank in ('0', '-2', '100000'):
        one_line_error(codellm('train', '--stage', 'domain', '--domain', 'web', '--lora', '--lora-rank', rank, *d, *TRAIN), '--lora-rank')
    one_line_error(codellm('train', '--stage', 'domain', '--replay', '1.5', *d), '--replay')
    (tmp_path / 'empty.txt').write_text(''); (tmp_path / 'blob.bin').write_bytes(b'\x00\x01\xff' * 10)
    for name, what in (('empty.txt', 'EMPTY'), ('blob.bin', 'BINARY'), ('missing.txt', 'NOT FOUND')):
        one_line_error(codellm('perplexity', '--checkpoint', base, '--file', tmp_path / name), what)
    one_line_error(codellm('perplexity', '--checkpoint', base, '--domain', 'gaming', '--file', tmp_path / 'blob.bin'), 'UNKNOWN DOMAIN')
    (tmp_path / 'ok.txt').write_text('print(1)\n')
    one_line_error(codellm('perplexity', '--checkpoint', base, '--adapter', tmp_path / 'none.pth', '--file', tmp_path / 'ok.txt'), 'ADAPTER')
    with pytest.raises(CodeLLMError, match='UNKNOWN DOMAIN'): dd.check_domain('all')
    assert dd.check_domain('all', allow_all=True) == 'all'
