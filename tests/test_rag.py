"""Tests for stage 6 (`codellm.stages.rag`, `codellm.rag.index`) that need no trained model: a random micro model stands
in for the stage-5 checkpoint, and the stage's commands run on it through the CLI (`prepare rag --source`, `train --stage
rag`, `evaluate`, `index`, `search`, `generate --rag`, `chat --rag`), with the one-line errors of bad input."""
import json
from pathlib import Path

import pytest
import torch

from codellm.checkpoint import save_checkpoint
from codellm.chat_format import CHAT_TEMPLATE
from codellm.model import GPT, tiny_test_config
from codellm.tokenizer import BPETokenizer
from codellm.rag.index import Embedder, build_index, load_index
from conftest import codellm, one_line_error

MODULES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima',
           'mike', 'november', 'oscar', 'papa', 'quebec', 'romeo', 'sierra', 'tango', 'uniform', 'victor', 'whiskey', 'xray']

def source_tree(root: Path) -> Path:
    "A small Python tree: two documented functions per top-level module, enough modules for three splits."
    for i, m in enumerate(MODULES):
        (root / f'{m}.py').write_text(
            f'def load_{m}(path, mode="r"):\n    """Read the {m} records from a file on disk."""\n    with open(path, mode) as f:\n'
            f'        return f.read()\n\n\ndef count_{m}(items):\n    # Count how many {m} items there are in a list.\n'
            f'    total = 0\n    for x in items:\n        total += {i + 1}\n    return total\n')
    return root

@pytest.fixture(scope='module')
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp('rag')
    src = source_tree(d / 'src') if (d / 'src').mkdir() is None else None
    tok = BPETokenizer.train([(src / f'{m}.py').read_text() for m in MODULES], vocab_size=400)
    torch.manual_seed(0)
    ck = d / 'models' / 'multimodal_model_best.pth'; ck.parent.mkdir()
    save_checkpoint(ck, GPT(tiny_test_config(vocab_size=tok.vocab_size, block_size=256)), tok, 'multimodal', CHAT_TEMPLATE)
    return dict(dir=d, src=src, ck=ck, data=d / 'data', models=d / 'models')

def test_prepare_train_evaluate(world):
    w = world
    r = codellm('prepare', 'rag', '--source', w['src'], '--checkpoint', w['ck'], '--qa-examples', 40, '--data-dir', w['data'], check=True)
    meta = json.loads(r.stdout)
    assert all(meta['pairs'][s] > 0 for s in ('train', 'val', 'test')), meta
    assert meta['block_size'] == 256 and meta['qa']['train'] > 0
    codellm('train', '--stage', 'rag', '--checkpoint', w['ck'], '--data-dir', w['data'], '--models-dir', w['models'],
            '--steps-per-epoch', 3, '--batch-size', 4, '--eval-every', 3, '--eval-windows', 4, '--no-progress', check=True)
    best = w['models'] / 'rag_model_best.pth'
    assert best.is_file()
    r = codellm('evaluate', '--stage', 'rag', '--data-dir', w['data'], '--models-dir', w['models'], '--questions', 4,
                '--codebase', w['src'], '--before', w['ck'], check=True)
    row = json.loads(r.stdout)
    for k in ('bm25_r10', 'trained_r10', 'hybrid_r10', 'untrained_r10', 'grounded_rag', 'grounded_none', 'own_words_oracle'):
        assert 0.0 <= row[k] <= 1.0, (k, row[k])
    assert row['baseline'] == row['bm25_r10'] and row['ours'] == row['hybrid_r10']

def test_index_search_and_bad_input(world, tmp_path):
    w, out = world, tmp_path / 'rag'
    r = codellm('index', '--codebase', w['src'], '--out', out, '--checkpoint', w['ck'], '--chunk-size', 64, '--no-progress', check=True)
    s = json.loads(r.stdout)
    assert s['files'] == len(MODULES) and s['embedded'] == s['chunks'] > 0
    r = codellm('search', '--query', 'count the kilo items', '--index', out, '--json', '--k', 3, '--mode', 'bm25', check=True)
    res = json.loads(r.stdout)
    assert list(res) == ['query', 'results'] and len(res['results']) == 3
    assert list(res['results'][0]) == ['path', 'start_line', 'end_line', 'score', 'text'] and res['results'][0]['path'] == 'kilo.py'
    for mode in ('dense', 'hybrid'): codellm('search', '--query', 'read a file', '--index', out, '--mode', mode, check=True)
    (tmp_path / 'q.txt').write_text('read records\n\ncount items\n')
    r = codellm('search', '--queries', tmp_path / 'q.txt', '--index', out, check=True)
    assert [json.loads(l)['query'] for l in r.stdout.splitlines()] == ['read records', 'count items']
    r = codellm('generate', '--checkpoint', w['ck'], '--rag', out, '--prompt', 'Which file defines `count_kilo`?', check=True)
    assert 'sources:' in r.stdout
    other = tmp_path / 'other_model_best.pth'
    torch.manual_seed(1)
    tok = load_index(out).embedder().tokenizer
    save_checkpoint(other, GPT(tiny_test_config(vocab_size=tok.vocab_size, block_size=256)), tok, 'multimodal', CHAT_TEMPLATE)
    one_line_error(codellm('index', '--codebase', w['src'] / 'nope', '--out', out, '--checkpoint', w['ck']), 'CODEBASE NOT FOUND')
    one_line_error(codellm('index', '--codebase', w['dir'] / 'models', '--out', out, '--checkpoint', w['ck']), 'FILES UNDER', '--extensions')
    one_line_error(codellm('search', '--query', 'x', '--index', tmp_path / 'none'), 'NO INDEX', 'codellm index')
    one_line_error(codellm('search', '--query', '  ', '--index', out), 'EMPTY QUERY')
    one_line_error(codellm('search', '--query', 'x', '--index', out, '--checkpoint', other), 'ANOTHER EMBEDDER', 'codellm index')
    one_line_error(codellm('prepare', 'rag', '--source', tmp_path / 'nothing', '--checkpoint', w['ck'], '--data-dir', tmp_path / 'd'), 'PYTHON SOURCE NOT FOUND')

def test_reindex_embeds_only_changes(world, tmp_path):
    w = world
    src = source_tree(tmp_path / 'src') if (tmp_path / 'src').mkdir() is None else None
    from codellm.checkpoint import load_checkpoint
    ck = load_checkpoint(w['ck'])
    emb = Embedder(ck.model, ck.tokenizer, str(w['ck']))
    first = build_index(src, tmp_path / 'rag', emb, chunk_size=64, progress=False)
    (src / 'kilo.py').write_text((src / 'kilo.py').read_text().replace('Count how many', 'Count all'))
    again = build_index(src, tmp_path / 'rag', emb, chunk_size=64, progress=False)
    assert 0 < again['embedded'] < first['embedded'] and again['embedded'] + again['reused'] == again['chunks']
    idx = load_index(tmp_path / 'rag')
    assert len(idx.chunks) == len(idx.vectors) == idx.faiss_index.ntotal
