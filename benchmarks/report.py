"""A text table and a 2x2 chart of a results dict (the JSON `python -m benchmarks` writes)."""


def _fmt(v, nd=0): return f"{v:,.{nd}f}"


def table(res: dict) -> str:
    "Fixed-width text, one block per benchmark."
    out, m = [], res['meta']
    out.append(f"{m['cpu_model']} | {m['cpu_count']} cores | torch {m['torch']} ({m['torch_threads']} threads) | "
               f"transformers {m['transformers']} | load avg {m.get('load_avg_start')} -> {m.get('load_avg_end')}")
    if 'training' in res:
        t = res['training']
        out.append("\nTraining throughput (tokens/s, forward+backward+AdamW step; median of repeats)")
        comp = t['settings'].get('compiled')
        out.append(f"{'preset':8}{'precision':11}{'codellm':>12}{'GPT-2 (HF)':>13}{'ratio':>8}{'target':>12}"
                   + (f"{'compiled':>12}{'ratio':>8}" if comp else ''))
        by = {(r['preset'], r['precision'], r['impl']): r['tokens_per_s'] for r in t['results']}
        for r in t['ratios']:
            k = (r['preset'], r['precision'])
            out.append(f"{r['preset']:8}{r['precision']:11}{_fmt(by[k + ('codellm',)]):>12}{_fmt(by[k + ('transformers',)]):>13}"
                       f"{r['ratio']:>7.2f}x{'>=' + str(r['target']) + ('x ok' if r['meets_target'] else 'x MISS'):>12}"
                       + (f"{_fmt(by[k + ('codellm_compiled',)]):>12}{r['compiled_ratio']:>7.2f}x" if comp else ''))
        if comp: out.append(f"compile time (s, first step): {t['compile_s']}")
    if 'generation' in res:
        g = res['generation']; s = g['settings']
        out.append(f"\nGeneration, {s['preset']} (block {s['block_size']}), batch 1, {s['prompt_tokens']}+{s['new_tokens']} tokens, greedy, fp32 (tokens/s)")
        for r in g['results']: out.append(f"  {r['impl']:22}{_fmt(r['tokens_per_s'], 1):>10}")
        out.append(f"  KV cache speedup {g['cache_speedup']:.2f}x (target >= {g['cache_target']}x: {'ok' if g['meets_target'] else 'MISS'}); "
                   f"vs transformers generate {g['vs_transformers']:.2f}x; cached == uncached tokens: {g['cached_equals_uncached']}")
    if 'rollouts' in res:
        g = res['rollouts']; s = g['settings']
        out.append(f"\nPPO rollouts, {s['preset']}, {s['batch']} prompts x ({s['prompt_tokens']}+{s['new_tokens']} tokens), sampled, fp32 (new tokens/s)")
        for r in g['results']: out.append(f"  {r['impl']:22}{_fmt(r['tokens_per_s'], 1):>10}")
        out.append(f"  batched speedup {g['speedup']:.2f}x (target >= {g['target']}x: {'ok' if g['meets_target'] else 'MISS'})")
    if 'multimodal' in res:
        m = res['multimodal']
        out.append(f"\nStage 5 data: prepare multimodal, {m['settings']['num_images']} pictures: {m['seconds']:.1f} s "
                   f"(target < {m['target_s']:.0f} s: {'ok' if m['meets_target'] else 'MISS'})")
    if 'rag' in res:
        g = res['rag']; s = g['settings']
        out.append(f"\nStage 6 vector search: {s['vectors']:,} clustered vectors, d={s['dim']}, {s['queries']} held-out queries, "
                   f"faiss {s['faiss']} ({s['faiss_threads']} threads); targets: recall@10 >= {g['target_recall']}, >= {g['target_speedup']:.0f}x flat's queries/s")
        out.append(f"  {'index':6}{'settings':36}{'build s':>8}{'MB':>7}{'recall@10':>10}{'':5}{'batch q/s':>11}{'x flat':>8}{'':5}{'single q/s':>12}{'x flat':>8}")
        for r in g['results']:
            ps = ', '.join(f'{k}={v}' for k, v in r['params'].items())
            m = g['meets_target'].get(r['kind'])
            ok = (lambda key: '' if m is None else (' ok' if m[key] else ' MISS'))
            out.append(f"  {r['kind']:6}{ps:36}{r['build_s']:>8.1f}{r['index_mb']:>7.1f}{r['recall_at_10']:>10.4f}{ok('recall'):5}"
                       f"{_fmt(r['batch_qps']):>11}{r['batch_speedup']:>7.1f}x{ok('batch_speedup'):5}"
                       f"{_fmt(r['single_qps']):>12}{r['single_speedup']:>7.1f}x{ok('single_speedup'):5}")
        if 'index' in g:
            x = g['index']; mt = x['meets_target']; ok = lambda key: 'ok' if mt[key] else 'MISS'
            out.append(f"Stage 6 index of {', '.join(x['settings']['sources'])} ({', '.join(x['settings']['extensions'])}; {x['settings']['checkpoint']}, "
                       f"{x['settings']['torch_threads']} torch threads): {x['files']} files, {x['chunks']:,} chunks in {x['index_s']:.1f} s "
                       f"(target < {x['target_index_s']:.0f} s: {ok('index_s')}); load {x['load_index_s']:.2f} s + embedder {x['load_embedder_s']:.2f} s")
            out.append(f"  query after loading, {x['settings']['queries']} queries (ms): " + ', '.join(
                f"{m} median {q['median_ms']:.1f} max {q['max_ms']:.1f} ({ok('query_' + m)})" for m, q in x['query'].items())
                + f"; target median < {x['target_query_ms']:.0f} ms")
    if 'memory' in res and 'results' in res['memory']:
        out.append("\nPeak memory (MB, fresh process; workload = peak - after-imports baseline)")
        out.append(f"{'task':10}{'preset':8}{'precision':11}{'impl':22}{'peak':>8}{'workload':>10}")
        for r in res['memory']['results']:
            impl = r['impl'] + ('' if r['task'] == 'train' else (' cached' if r.get('cache') else ' uncached'))
            out.append(f"{r['task']:10}{r['size']:8}{r['precision']:11}{impl:22}{r['peak_mb']:>8.0f}{r['workload_mb']:>10.0f}")
    if 'tokenizer' in res:
        k = res['tokenizer']; s = k['settings']
        out.append(f"\nTokenizer, {s['mb']} MB, vocab {s['vocab_size']} (MB/s)")
        by = {(r['task'], r['impl']): r['mb_per_s'] for r in k['results']}
        for task in ('train', 'encode'):
            ratio = k[f'{task}_ratio']
            out.append(f"  {task:8}codellm {by[(task, 'codellm')]:7.2f}   tokenizers {by[(task, 'tokenizers')]:7.2f}   "
                       f"codellm/tokenizers {ratio:.2f}x")
        if 'tokenizers_batch' in {i for _, i in by}:
            out.append(f"  encode  tokenizers encode_batch ({s['hf_threads']} threads) {by[('encode', 'tokenizers_batch')]:.2f}   "
                       f"codellm/encode_batch {k['encode_ratio_vs_batch']:.2f}x")
        out.append(f"  bytes/token: {k['bytes_per_token']}")
    return '\n'.join(out)


def chart(res: dict, path):
    "Four panels: training tokens/s, generation tokens/s, peak memory, tokenizer MB/s."
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    colors = {'codellm': '#1f77b4', 'transformers': '#ff7f0e'}
    ax = axes[0, 0]
    if 'training' in res:
        t = res['training']
        groups = [(r['preset'], r['precision']) for r in t['ratios']]
        by = {(r['preset'], r['precision'], r['impl']): r['tokens_per_s'] for r in t['results']}
        impls = ['codellm', 'transformers'] + (['codellm_compiled'] if t['settings'].get('compiled') else [])
        labels = {'codellm': 'codellm GPT', 'transformers': 'transformers GPT-2', 'codellm_compiled': 'codellm + torch.compile'}
        xs, w = np.arange(len(groups)), 0.8 / len(impls)
        for j, impl in enumerate(impls):
            ax.bar(xs + (j - (len(impls) - 1) / 2) * w, [by[g + (impl,)] for g in groups], w,
                   color=colors.get(impl, '#2ca02c'), label=labels[impl])
        for x, r in zip(xs, t['ratios']):
            ax.text(x, max(by[(r['preset'], r['precision'], i)] for i in impls) * 1.05, f"{r['ratio']:.2f}x", ha='center')
        ax.set_xticks(xs, [f'{s}\n{p}' for s, p in groups]); ax.legend(loc='upper right', fontsize=8)
        ax.set_yscale('log')
        lo, hi = min(by.values()), max(by.values())
        ax.set_ylim(lo * 0.7, hi * 2.5)                              # room for the ratios and the legend
    ax.set(title='Training throughput (ratio: codellm / GPT-2, eager)', xlabel='preset / precision', ylabel='tokens per second (log)')
    ax = axes[0, 1]
    if 'generation' in res:
        g = res['generation']
        names = {'codellm_cached': 'codellm\nKV cache', 'codellm_uncached': 'codellm\nno cache', 'transformers_cached': 'transformers\ngenerate'}
        vals = [r['tokens_per_s'] for r in g['results']]
        bars = ax.bar([names[r['impl']] for r in g['results']], vals,
                      color=[colors['transformers' if 'transformers' in r['impl'] else 'codellm'] for r in g['results']])
        bars[1].set_alpha(0.5)
        for b, v in zip(bars, vals): ax.text(b.get_x() + b.get_width() / 2, v * 1.01, f'{v:.0f}', ha='center')
        s = g['settings']
        ax.set_title(f"Generation, {s['preset']}, batch 1, {s['new_tokens']} new tokens (cache {g['cache_speedup']:.1f}x)")
    ax.set(xlabel='implementation', ylabel='new tokens per second')
    ax = axes[1, 0]
    if 'memory' in res and 'results' in res['memory']:
        rows = res['memory']['results']
        label = lambda r: (f"train {r['size']}\n{r['precision']}" if r['task'] == 'train' else
                           f"generate\n{'cache' if r.get('cache') else 'no cache'}")
        cats = list(dict.fromkeys(label(r) for r in rows))
        xs, w = np.arange(len(cats)), 0.38
        for j, impl in enumerate(('codellm', 'transformers')):
            vals = {label(r): r['workload_mb'] for r in rows if r['impl'] == impl}
            ax.bar(xs + (j - 0.5) * w, [vals.get(c, 0) for c in cats], w, color=colors[impl], label=impl)
        ax.set_xticks(xs, cats, fontsize=8); ax.legend()
    ax.set(title='Peak memory above the imports (lower is better)', xlabel='configuration', ylabel='MB (peak resident set size)')
    ax = axes[1, 1]
    if 'tokenizer' in res:
        k = res['tokenizer']
        by = {(r['task'], r['impl']): r['mb_per_s'] for r in k['results']}
        xs, w = np.arange(2), 0.28
        labels = {'codellm': 'codellm BPETokenizer (Python)', 'tokenizers': 'HF tokenizers (Rust)',
                  'tokenizers_batch': 'HF tokenizers encode_batch'}
        for j, impl in enumerate(labels):
            ax.bar(xs + (j - 1) * w, [by.get((t, impl), 0) for t in ('train', 'encode')], w,
                   color=colors['codellm' if impl == 'codellm' else 'transformers'], alpha=0.55 if 'batch' in impl else 1,
                   label=labels[impl])
        ax.set_xticks(xs, ['train', 'encode (per document)']); ax.legend(fontsize=8)
        ax.set_title(f"Tokenizer, {k['settings']['mb']} MB, vocab {k['settings']['vocab_size']}")
    ax.set(xlabel='task', ylabel='MB of text per second')
    m = res['meta']
    fig.suptitle(f"codellm benchmarks: {m['cpu_model']}, {m['cpu_count']} cores, {m.get('torch_threads', '?')} torch thread(s), "
                 f"torch {m['torch']}, {m['date'][:10]}, load avg {(m.get('load_avg_start') or ['?'])[0]}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
