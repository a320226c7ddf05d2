"""Where a training step's time goes: torch.profiler over a few steps of codellm and of transformers GPT-2, self CPU
time grouped by kind of operation, plus the top operators.

    python -m benchmarks.profile --preset tiny --precision bf16 --threads 1
"""
import argparse, json
import torch
from torch.profiler import ProfilerActivity, profile
from .models import VOCAB, codellm_model, hf_gpt2
from .training import BATCH, make_trainer_step

GROUPS = [  # (group, substrings of operator names), first match wins
    ('softmax + cross-entropy', ('log_softmax', 'nll_loss', 'logsumexp')),
    # SDPA's kernels, or (codellm, bf16 on a CPU) the explicit route: scores by baddbmm, softmax, bmm with the values
    ('attention', ('scaled_dot_product', '_efficient_attention', '_flash_attention', 'aten::baddbmm', 'aten::bmm', 'aten::_softmax')),
    ('matmul', ('aten::mm', 'aten::addmm')),
    ('norm', ('rms_norm', 'layer_norm')),
    ('optimizer + clipping', ('_fused_adamw', 'adamw', 'linalg_vector_norm', '_foreach')),
    ('dtype casts / copies', ('aten::copy_', 'aten::_to_copy', 'aten::to')),
    ('elementwise', ('aten::mul', 'aten::add', 'aten::sub', 'aten::div', 'aten::neg', 'aten::pow', 'aten::cat', 'aten::gelu',
                     'aten::tanh', 'aten::mean', 'aten::rsqrt', 'aten::sum', 'aten::fill_', 'aten::zero_', 'aten::exp')),
]


def group_of(name: str) -> str:
    for g, keys in GROUPS:
        if any(k in name for k in keys): return g
    return 'other'


def profile_step(preset: str = 'tiny', precision: str = 'bf16', steps: int = 4, batch: int | None = None) -> dict:
    """Per implementation: total self CPU ms over `steps` steps, ms per group, and the top operators, unrounded (so
    that the total is exactly the sum of the groups; `rounded` rounds them for display).
    The two models take turns, one profiled step each, so that a busy machine slows both alike."""
    ours = codellm_model(preset).train()
    hf = hf_gpt2(ours.config).train()
    B, T = batch or BATCH[preset], ours.config.block_size
    x = torch.randint(VOCAB, (B, T), generator=torch.Generator().manual_seed(0))
    fns = {}
    for kind, model in (('codellm', ours), ('transformers', hf)):
        fns[kind] = make_trainer_step(model, kind, x, torch.roll(x, -1, 1), amp=precision == 'bf16')
        fns[kind](); fns[kind]()
    acc = {k: {} for k in fns}                                   # kind -> op -> [self us, calls]
    for i in range(steps):
        for kind in (list(fns) if i % 2 == 0 else list(fns)[::-1]):
            with profile(activities=[ProfilerActivity.CPU]) as prof: fns[kind]()
            for e in prof.key_averages():
                a = acc[kind].setdefault(e.key, [0.0, 0])
                a[0] += e.self_cpu_time_total; a[1] += e.count
    out = {}
    for kind, ops in acc.items():
        ops = {k: v for k, v in ops.items() if v[0] > 0}
        groups = {}
        for k, (us, _) in ops.items(): groups[group_of(k)] = groups.get(group_of(k), 0) + us / 1000
        top = sorted(ops.items(), key=lambda kv: -kv[1][0])[:12]
        out[kind] = dict(total_ms=sum(us for us, _ in ops.values()) / 1000,   # unrounded: the total is the sum of the groups
                         groups_ms=dict(sorted(groups.items(), key=lambda kv: -kv[1])),
                         top=[dict(op=k, self_ms=us / 1000, calls=n) for k, (us, n) in top])
    return dict(preset=preset, precision=precision, steps=steps, batch=B, block=T, threads=torch.get_num_threads(), **out)


def rounded(r: dict, ndigits: int = 1) -> dict:
    "`r` as `profile_step` returns it, every millisecond figure rounded to `ndigits` decimals: for display only."
    def rnd(v):
        if isinstance(v, float): return round(v, ndigits)
        if isinstance(v, dict): return {k: rnd(x) for k, x in v.items()}
        return [rnd(x) for x in v] if isinstance(v, list) else v
    return {k: rnd(v) if isinstance(v, dict) else v for k, v in r.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(prog='python -m benchmarks.profile', description=__doc__.splitlines()[0])
    ap.add_argument('--preset', default='tiny'); ap.add_argument('--precision', default='bf16', choices=['bf16', 'fp32'])
    ap.add_argument('--steps', type=int, default=4); ap.add_argument('--threads', type=int, default=None)
    ap.add_argument('--json', action='store_true', help='print the whole result as JSON')
    a = ap.parse_args(argv)
    if a.threads: torch.set_num_threads(a.threads)
    r = profile_step(a.preset, a.precision, a.steps)
    if a.json: print(json.dumps(rounded(r), indent=1)); return
    print(f"{r['preset']} {r['precision']}, {r['steps']} steps of {r['batch']}x{r['block']} tokens, {r['threads']} thread(s): self CPU ms")
    names = list(dict.fromkeys([*r['codellm']['groups_ms'], *r['transformers']['groups_ms']]))
    print(f"{'group':26}{'codellm':>10}{'GPT-2':>10}")
    for g in names: print(f"{g:26}{r['codellm']['groups_ms'].get(g, 0):>10.1f}{r['transformers']['groups_ms'].get(g, 0):>10.1f}")
    print(f"{'total':26}{r['codellm']['total_ms']:>10.1f}{r['transformers']['total_ms']:>10.1f}")
    for kind in ('codellm', 'transformers'):
        print(f"\ntop operators, {kind}:")
        for t in r[kind]['top']: print(f"  {t['op'][:60]:62}{t['self_ms']:>9.1f} ms {t['calls']:>6} calls")


if __name__ == '__main__':
    main()
