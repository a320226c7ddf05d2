"""Smoke test of `python -m benchmarks`: every code path at trivial sizes, and the shape of the JSON it writes.

Benchmarks are measurements, not tests: nothing here asserts a speed. What is asserted is what must hold at any speed:
the fields are there, the ratios are the medians of the paired runs, greedy decoding with the KV cache gives the same
tokens as without, the tokenizer round-trips, memory figures are positive, the chart is a PNG.
"""
import json, statistics, sys
from pathlib import Path
import pytest

pytest.importorskip('transformers')
pytest.importorskip('tokenizers')
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # `benchmarks/` lives at the repo root, outside the package

import benchmarks.training
from benchmarks.__main__ import main
from benchmarks.memory import bench_memory
from benchmarks.report import chart, table


def within_rounding(ratio, a, b, half) -> bool:
    """Is `ratio` the median of the paired ratios a[i] / b[i], where each of a and b was rounded to +-`half`? The median
    is monotone in every element, so the exact value lies between the medians of the smallest and largest ratios."""
    lo = statistics.median([(x - half) / (y + half) for x, y in zip(a, b)])
    hi = statistics.median([(x + half) / (y - half) for x, y in zip(a, b)])
    return lo * (1 - 1e-12) <= ratio <= hi * (1 + 1e-12)


@pytest.fixture(scope='module')
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp('bench') / 'latest.json'
    mp = pytest.MonkeyPatch()
    mp.setitem(benchmarks.training.BATCH, 'tiny', 1)          # one sequence per training step
    try:
        assert main(['--quick', '--only', 'training,generation,tokenizer', '--repeats', '2', '--steps', '1',
                     '--new-tokens', '4', '--text-mb', '0.03', '--out', str(out)]) == 0
    finally: mp.undo()
    return out, json.loads(out.read_text())


def test_meta(results):
    _, r = results
    m = r['meta']
    for k in ('date', 'cpu_model', 'cpu_count', 'torch', 'transformers', 'tokenizers', 'torch_threads', 'load_avg_start',
              'load_avg_end', 'load_avg_per_section', 'repeats'):
        assert k in m, k
    assert m['quick'] is True and m['repeats'] == 2
    assert set(m['load_avg_per_section']) == {'training', 'generation', 'tokenizer'}


def test_training_shape(results):
    t = results[1]['training']
    assert t['settings']['presets'] == ['tiny'] and t['settings']['hf_attn_implementation']
    assert {(x['precision'], x['impl']) for x in t['results']} == {(p, i) for p in ('bf16', 'fp32') for i in ('codellm', 'transformers')}
    for x in t['results']:
        assert x['batch'] == 1 and x['block'] == 256 and len(x['tokens_per_s_runs']) == 2 and x['tokens_per_s'] > 0
    by = {(x['precision'], x['impl']): x for x in t['results']}
    for q in t['ratios']:
        a, b = by[(q['precision'], 'codellm')]['tokens_per_s_runs'], by[(q['precision'], 'transformers')]['tokens_per_s_runs']
        assert within_rounding(q['ratio'], a, b, 0.05)
        assert q['meets_target'] == (q['ratio'] >= q['target'] == 1.2)
    assert [g['name'] for g in results[1]['targets']][:1] == ['training tiny bf16: codellm / transformers GPT-2']


def test_generation_shape(results):
    g = results[1]['generation']
    assert g['settings']['block_size'] >= g['settings']['prompt_tokens'] + 256
    assert [x['impl'] for x in g['results']] == ['codellm_cached', 'codellm_uncached', 'transformers_cached']
    assert all(x['tokens_per_s'] > 0 for x in g['results'])
    assert g['cached_equals_uncached'] is True and g['first_mismatch'] is None   # the fast path agrees with the naive one
    # the reported speedup is the median of the paired (interleaved) per-repeat ratios
    runs = g['cache_speedup_runs']                                  # each rounded to 3 decimals
    assert statistics.median([x - 5e-4 for x in runs]) - 1e-12 <= g['cache_speedup'] <= statistics.median([x + 5e-4 for x in runs]) + 1e-12


def test_tokenizer_shape(results):
    k = results[1]['tokenizer']
    assert {(x['task'], x['impl']) for x in k['results']} == \
        {(t, i) for t in ('train', 'encode') for i in ('codellm', 'tokenizers')} | {('encode', 'tokenizers_batch')}
    assert all(x['mb_per_s'] > 0 for x in k['results'])
    assert 0.02 < k['settings']['mb'] < 0.05
    assert k['codellm_roundtrip'] is True
    assert all(v > 1 for v in k['bytes_per_token'].values())   # BPE compresses: more than one byte per token


def test_outputs_written(results):
    out, r = results
    png = out.with_suffix('.png')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    text = table(r)
    assert 'Training throughput' in text and 'KV cache speedup' in text and 'Tokenizer' in text


def test_memory(tmp_path):
    m = bench_memory(('tiny',), ('bf16',), generation=False, batch={'tiny': 1})
    rows = m['results']
    assert [x['impl'] for x in rows] == ['codellm', 'transformers']
    for x in rows:
        assert x['peak_mb'] >= x['baseline_mb'] > 0 and x['workload_mb'] > 0 and x['params'] > 10**6
    assert chart({'meta': {'cpu_model': 'x', 'cpu_count': 1, 'torch': '0', 'date': '2000-01-01'}, 'memory': m},
                 tmp_path / 'm.png').stat().st_size > 0


def test_profile_groups():
    from benchmarks.profile import profile_step, rounded
    r = profile_step('tiny', 'bf16', steps=1, batch=1)
    shown = rounded(r)
    for kind in ('codellm', 'transformers'):
        g = r[kind]['groups_ms']
        # unrounded, the groups partition the total (up to float summation order); rounding each to 0.1 ms would not
        assert r[kind]['total_ms'] == pytest.approx(sum(g.values()), rel=1e-9)
        assert 'attention' in g and 'matmul' in g             # both models attend and multiply matrices
        assert r[kind]['top'] and all(t['calls'] > 0 for t in r[kind]['top'])
        assert shown[kind]['total_ms'] == round(r[kind]['total_ms'], 1) and list(shown[kind]['groups_ms']) == list(g)
        assert [t['self_ms'] for t in shown[kind]['top']] == [round(t['self_ms'], 1) for t in r[kind]['top']]
    assert {k: v for k, v in shown.items() if k not in ('codellm', 'transformers')} == \
        {k: v for k, v in r.items() if k not in ('codellm', 'transformers')}


def test_rollouts_shape():
    from benchmarks.rollouts import bench_rollouts
    r = bench_rollouts('tiny', batch=3, new_tokens=4, prompt_len=5, repeats=2, log=lambda *a: None)
    assert [x['impl'] for x in r['results']] == ['batched_kv_cache', 'one_prompt_at_a_time']
    assert all(x['tokens_per_s'] > 0 and len(x['tokens_per_s_runs']) == 2 for x in r['results'])
    b, one = (x['tokens_per_s_runs'] for x in r['results'])
    assert within_rounding(r['speedup'], b, one, 0.05) and r['target'] == 4.0 and r['meets_target'] == (r['speedup'] >= 4.0)
    assert r['settings']['batch'] == 3 and r['settings']['new_tokens'] == 4


def test_multimodal_prepare_shape():
    from benchmarks.multimodal import bench_multimodal_prepare
    r = bench_multimodal_prepare(num_images=12, repeats=1, log=lambda *a: None)
    assert r['settings'] == {'num_images': 12, 'repeats': 1} and len(r['seconds_runs']) == 1
    assert r['meets_target'] == (r['seconds'] < 60.0)


def test_rag_shape():
    from benchmarks.__main__ import targets
    from benchmarks.rag import bench_rag
    from codellm.rag.vectors import DEFAULT_EF_SEARCH, DEFAULT_NPROBE
    r = bench_rag(n=2000, queries=40, single=5, repeats=2, log=lambda *a: None)
    assert r['settings']['vectors'] == 2000 and r['settings']['dim'] == 128 and r['settings']['seed'] == 0
    by = {x['kind']: x for x in r['results']}
    assert list(by) == ['flat', 'ivf', 'hnsw']
    assert by['flat']['recall_at_10'] == 1.0 and all(0 < x['recall_at_10'] <= 1 for x in by.values())
    assert by['flat']['index_mb'] <= by['ivf']['index_mb'] < by['hnsw']['index_mb']      # + list ids, + graph links
    assert by['ivf']['params']['nprobe'] == DEFAULT_NPROBE and by['hnsw']['params']['efSearch'] == DEFAULT_EF_SEARCH
    for x in by.values():
        assert x['batch_qps'] > 0 and x['single_qps'] > 0 and len(x['batch_qps_runs']) == len(x['single_qps_runs']) == 2
        for mode in ('batch', 'single'):   # the median of the paired per-repeat ratios: runs rounded to 1 q/s, the ratio to 0.01
            a, f = x[f'{mode}_qps_runs'], by['flat'][f'{mode}_qps_runs']
            lo = statistics.median([(u - 0.5) / (v + 0.5) for u, v in zip(a, f)])
            hi = statistics.median([(u + 0.5) / (v - 0.5) for u, v in zip(a, f)])
            assert lo - 0.005 - 1e-9 <= x[f'{mode}_speedup'] <= hi + 0.005 + 1e-9, (mode, x)
    assert set(r['meets_target']) == {'ivf', 'hnsw'}
    for k, met in r['meets_target'].items():
        x = by[k]
        assert met == dict(recall=x['recall_at_10'] >= 0.95, batch_speedup=x['batch_speedup'] >= 5.0,
                           single_speedup=x['single_speedup'] >= 5.0)
    t = targets({'rag': r})
    assert len(t) == 6 and all(set(g) == {'name', 'value', 'target', 'met'} for g in t)
    assert 'Stage 6 vector search' in table({'meta': {'cpu_model': 'x', 'cpu_count': 1, 'torch': '0', 'torch_threads': 1,
                                                      'transformers': '0'}, 'rag': r})


def test_rag_index_shape(tmp_path):
    "bench_index on a micro model and a two-folder codebase: the fields, the targets, the threads put back; no speed."
    import torch
    from benchmarks.__main__ import targets
    from benchmarks.rag import bench_index, bench_rag
    from codellm.checkpoint import save_checkpoint
    from codellm.chat_format import CHAT_TEMPLATE
    from codellm.model import GPT, tiny_test_config
    from codellm.tokenizer import BPETokenizer
    (tmp_path / 'pkg').mkdir(); (tmp_path / 'docs').mkdir()
    for i in range(3): (tmp_path / 'pkg' / f'm{i}.py').write_text(f'def load_{i}(path):\n    "Read file {i}."\n    return open(path).read()\n')
    (tmp_path / 'docs' / 'notes.md').write_text('# Notes\n\nHow the files are read.\n')
    tok = BPETokenizer.train([p.read_text() for p in (tmp_path / 'pkg').iterdir()], vocab_size=300)
    torch.manual_seed(0)
    ck = tmp_path / 'multimodal_model_best.pth'
    save_checkpoint(ck, GPT(tiny_test_config(vocab_size=tok.vocab_size, block_size=256)), tok, 'multimodal', CHAT_TEMPLATE)
    threads = torch.get_num_threads()
    x = bench_index(ck, threads=1, sources={'pkg': tmp_path / 'pkg', 'docs': tmp_path / 'docs'},
                    queries=['read a file', 'load_1', 'notes'], log=lambda *a: None)
    assert torch.get_num_threads() == threads                           # put back for the benchmarks after it
    assert x['files'] == 4 and x['chunks'] >= 4 and x['settings']['queries'] == 3 and x['settings']['torch_threads'] == 1
    assert x['settings']['sources'] == {'pkg': 'pkg', 'docs': 'docs'} and x['settings']['chunk_size'] == 512
    assert x['settings']['index_type'] == 'flat' and x['settings']['stage'] == 'multimodal' and x['index_mb'] > 0
    assert list(x['query']) == ['dense', 'bm25', 'hybrid']
    for m, q in x['query'].items():
        assert len(q['runs_ms']) == 3 and 0 <= q['median_ms'] <= q['max_ms'] == max(q['runs_ms'])
        assert x['meets_target'][f'query_{m}'] == (q['median_ms'] < x['target_query_ms'] == 100.0)
    assert x['meets_target']['index_s'] == (x['index_s'] < x['target_index_s'] == 60.0)
    r = bench_rag(n=2000, queries=40, single=5, repeats=1, log=lambda *a: None) | {'index': x}
    t = targets({'rag': r})
    assert len(t) == 6 + 1 + 3 and t[6]['value'] == x['index_s'] and [g['value'] for g in t[7:]] == [q['median_ms'] for q in x['query'].values()]
    text = table({'meta': {'cpu_model': 'x', 'cpu_count': 1, 'torch': '0', 'torch_threads': 1, 'transformers': '0'}, 'rag': r})
    assert 'Stage 6 index of pkg, docs' in text and 'query after loading' in text
