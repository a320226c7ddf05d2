"""`python -m benchmarks`: run the benchmarks, write a JSON of results and a chart, print a table.

    python -m benchmarks                      # everything, tiny and small presets (~5-10 min on 2 cores)
    python -m benchmarks --quick              # tiny preset, fewer repeats, less text (~1-2 min)
    python -m benchmarks --only training --presets tiny,small --repeats 7
    python -m benchmarks --max-load 2.5 --out benchmarks/recorded/cpu-2core.json   # wait for a quiet machine
"""
import argparse, json, os, sys, time
from pathlib import Path

SECTIONS = ('training', 'generation', 'memory', 'tokenizer', 'rollouts', 'multimodal', 'rag')
DEFAULT_OUT = Path(__file__).resolve().parent / 'results' / 'latest.json'


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog='python -m benchmarks', description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument('--quick', action='store_true', help='tiny preset only, 2 repeats, 0.3 MB of text')
    ap.add_argument('--only', default=','.join(SECTIONS), help=f'comma-separated subset of {",".join(SECTIONS)}')
    ap.add_argument('--presets', default=None, help='training/memory presets (default tiny,small; --quick: tiny)')
    ap.add_argument('--repeats', type=int, default=None, help='repeats per contender (default 5; --quick: 2)')
    ap.add_argument('--steps', type=int, default=None, help='training steps per measurement (default 3; --quick: 2)')
    ap.add_argument('--new-tokens', type=int, default=256, help='generation: new tokens (default 256)')
    ap.add_argument('--text-mb', type=float, default=None, help='tokenizer: MB of text (default 2; --quick: 0.3)')
    ap.add_argument('--compile', action='store_true', help='training: add codellm under torch.compile (--use-compile)')
    ap.add_argument('--threads', type=int, default=None, help='torch intra-op threads (default: torch\'s choice)')
    ap.add_argument('--max-load', type=float, default=None, help='wait until the 1-minute load average is below this')
    ap.add_argument('--max-wait', type=float, default=1800, help='give up waiting for --max-load after this many seconds')
    ap.add_argument('--out', default=str(DEFAULT_OUT), help='results JSON (the chart goes next to it as .png)')
    return ap.parse_args(argv)


def wait_for_load(limit: float, max_wait: float, log=print) -> list[float] | None:
    from .common import load_average
    t0 = time.time()
    while (la := load_average()) is not None and la[0] >= limit:
        if time.time() - t0 > max_wait:
            log(f"load average still {la[0]} after {max_wait:.0f} s; measuring anyway (recorded in the JSON)"); break
        log(f"load average {la[0]} >= {limit}: waiting 20 s"); time.sleep(20)
    return load_average()


def run(a, log=print) -> dict:
    import torch
    from .common import hardware, load_average
    if a.threads:   # torch here and in the memory workers; tokenizers' Rust thread pool (read when it first starts)
        torch.set_num_threads(a.threads)
        os.environ['OMP_NUM_THREADS'] = os.environ['RAYON_NUM_THREADS'] = str(a.threads)
    for mod in ('transformers', 'tokenizers'):
        try: __import__(mod)
        except ImportError: raise SystemExit(f"ERROR: {mod.upper()} IS NOT INSTALLED! Run: pip install -e '.[bench]'") from None
    only = [s.strip() for s in a.only.split(',') if s.strip()]
    bad = set(only) - set(SECTIONS)
    if bad: raise SystemExit(f"ERROR: UNKNOWN BENCHMARK(S) {sorted(bad)}! Run: python -m benchmarks --only {','.join(SECTIONS)}")
    presets = tuple(p.strip() for p in (a.presets or ('tiny' if a.quick else 'tiny,small')).split(','))
    repeats = a.repeats or (2 if a.quick else 5)
    steps = a.steps or (2 if a.quick else 3)
    if a.max_load is not None: wait_for_load(a.max_load, a.max_wait, log)
    res = {'meta': {**hardware(), 'quick': a.quick, 'repeats': repeats, 'load_avg_start': load_average()}}
    load = {}
    t0 = time.perf_counter()
    if 'training' in only:
        from .training import bench_training
        load['training'] = load_average()
        res['training'] = bench_training(presets, repeats=repeats, steps=steps, compile=a.compile, log=log)
    if 'generation' in only:
        from .generation import bench_generation
        load['generation'] = load_average()
        res['generation'] = bench_generation('tiny', new_tokens=a.new_tokens, repeats=repeats, log=log)
    if 'memory' in only:
        from .memory import bench_memory
        load['memory'] = load_average()
        res['memory'] = bench_memory(presets, precisions=('bf16',) if a.quick else ('bf16', 'fp32'),
                                     new_tokens=a.new_tokens, log=log)
    if 'tokenizer' in only:
        from .tokenization import bench_tokenizer
        load['tokenizer'] = load_average()
        res['tokenizer'] = bench_tokenizer(a.text_mb or (0.3 if a.quick else 2.0), repeats=max(1, min(repeats, 3)), log=log)
    if 'rollouts' in only:
        from .rollouts import bench_rollouts
        load['rollouts'] = load_average()
        res['rollouts'] = bench_rollouts('tiny', repeats=repeats, log=log)
    if 'multimodal' in only:
        from .multimodal import bench_multimodal_prepare
        load['multimodal'] = load_average()
        res['multimodal'] = bench_multimodal_prepare(repeats=max(1, min(repeats, 3)), log=log)
    if 'rag' in only:
        from .rag import bench_index, bench_rag, index_checkpoint
        load['rag'] = load_average()
        res['rag'] = bench_rag(n=20_000 if a.quick else 100_000, repeats=repeats, threads=a.threads, log=log)
        if (ck := index_checkpoint()) is None:
            log("rag: no embedder (models/rag_model_best.pth or models/multimodal_model_best.pth): the index benchmark is skipped. "
                "Run: codellm train --stage rag")
        else:   # indexing is one job for the whole machine, as `codellm index` runs: every core, whatever --threads says
            load['rag_index'] = load_average()
            res['rag']['index'] = bench_index(ck, log=log)
    res['meta'].update(load_avg_end=load_average(), load_avg_per_section=load, seconds=round(time.perf_counter() - t0, 1))
    res['targets'] = targets(res)
    return res


def targets(res: dict) -> list[dict]:
    "Issue 7's targets, with the measured values."
    out = []
    for r in res.get('training', {}).get('ratios', []):
        if r['precision'] == 'bf16':
            out.append(dict(name=f"training {r['preset']} bf16: codellm / transformers GPT-2", value=round(r['ratio'], 3),
                            target=r['target'], met=r['meets_target']))
            if 'compiled_ratio' in r:
                out.append(dict(name=f"training {r['preset']} bf16: codellm torch.compile / transformers GPT-2",
                                value=round(r['compiled_ratio'], 3), target=r['target'], met=r['compiled_ratio'] >= r['target']))
    if 'generation' in res:
        g = res['generation']
        out.append(dict(name='generation: KV cache / no cache, 256 tokens', value=round(g['cache_speedup'], 3),
                        target=g['cache_target'], met=g['meets_target']))
    if 'rollouts' in res:
        r = res['rollouts']
        out.append(dict(name='PPO rollouts: 32 prompts batched (KV cache) / one at a time', value=round(r['speedup'], 3),
                        target=r['target'], met=r['meets_target']))
    if 'multimodal' in res:
        m = res['multimodal']
        out.append(dict(name=f"prepare multimodal: {m['settings']['num_images']} pictures (seconds, below)", value=m['seconds'],
                        target=m['target_s'], met=m['meets_target']))
    if 'rag' in res:
        g = res['rag']; n = g['settings']['vectors']
        for r in g['results']:
            if r['kind'] == 'flat': continue
            out.append(dict(name=f"vector search {r['kind']}, {n:,} vectors: recall@10 against flat", value=r['recall_at_10'],
                            target=g['target_recall'], met=r['recall_at_10'] >= g['target_recall']))
            for mode, label in (('batch', f"{g['settings']['queries']} queries batched"), ('single', 'one query at a time')):
                v = r[f'{mode}_speedup']
                out.append(dict(name=f"vector search {r['kind']}, {n:,} vectors: queries/s / flat, {label}", value=v,
                                target=g['target_speedup'], met=v >= g['target_speedup']))
        if 'index' in g:
            x = g['index']; t = x['settings']['torch_threads']
            out.append(dict(name=f"codellm index of codellm/ and nbs/ ({x['chunks']:,} chunks, {t} threads): seconds", value=x['index_s'],
                            target=x['target_index_s'], met=x['meets_target']['index_s']))
            for mode, q in x['query'].items():
                out.append(dict(name=f"search after loading, {mode}: median ms of {x['settings']['queries']} queries", value=q['median_ms'],
                                target=x['target_query_ms'], met=x['meets_target'][f'query_{mode}']))
    return out


def main(argv=None) -> int:
    a = parse_args(argv)
    res = run(a)
    from .report import chart, table
    out = Path(a.out); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + '\n')
    png = chart(res, out.with_suffix('.png'))
    print(); print(table(res))
    print(f"\nresults: {out}\nchart:   {png}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
