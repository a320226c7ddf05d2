"""Generation throughput at batch 1, greedy: codellm with its KV cache, codellm re-reading the whole sequence every
token (no cache), and transformers GPT-2 `generate` (with its cache). fp32, as `codellm generate` runs.

The tiny preset's context is 256 tokens; a 16-token prompt plus 256 new tokens needs 272, so this benchmark uses the
tiny sizes with `block_size=512` (for both models)."""
import torch
from codellm.generation import generate
from .common import interleaved, median, paired_ratios, timed
from .models import VOCAB, codellm_model, hf_gpt2

TARGET = 3.0           # issue 7: KV-cached generation >= 3x uncached at 256 new tokens
BLOCK = 512


def bench_generation(size: str = 'tiny', new_tokens: int = 256, prompt_len: int = 16, repeats: int = 5,
                     log=print) -> dict:
    ours = codellm_model(size, block_size=BLOCK).eval()
    hf = hf_gpt2(ours.config).eval()
    prompt = torch.randint(VOCAB, (1, prompt_len), generator=torch.Generator().manual_seed(1))
    calls = {
        'codellm_cached': lambda: generate(ours, prompt, new_tokens, temperature=0, use_cache=True),
        'codellm_uncached': lambda: generate(ours, prompt, new_tokens, temperature=0, use_cache=False),
        'transformers_cached': lambda: hf.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                                   do_sample=False, use_cache=True),
    }
    outs = {k: f() for k, f in calls.items()}                     # warm-up, and the outputs to check
    for k, o in outs.items():
        if o.shape != (1, prompt_len + new_tokens): raise RuntimeError(f"{k} produced {tuple(o.shape)} tokens")
    same = outs['codellm_cached'] == outs['codellm_uncached']
    log(f"generation {size}: prompt {prompt_len} + {new_tokens} new tokens, {len(calls)} contenders x {repeats} repeats")
    with torch.inference_mode():
        runs = interleaved({k: (lambda f=f: new_tokens / timed(f)) for k, f in calls.items()}, repeats)
    speed = {k: median(v) for k, v in runs.items()}
    r_cache = paired_ratios(runs['codellm_cached'], runs['codellm_uncached'])
    r_hf = paired_ratios(runs['codellm_cached'], runs['transformers_cached'])
    return dict(settings=dict(preset=size, block_size=BLOCK, batch=1, prompt_tokens=prompt_len, new_tokens=new_tokens,
                              decoding='greedy', precision='fp32', repeats=repeats,
                              note=f'block_size raised to {BLOCK} so that prompt + new tokens fit'),
                results=[dict(impl=k, tokens_per_s=speed[k], tokens_per_s_runs=[round(t, 1) for t in runs[k]]) for k in calls],
                cache_speedup=median(r_cache), cache_speedup_runs=[round(v, 3) for v in r_cache],
                cache_target=TARGET, meets_target=median(r_cache) >= TARGET,
                vs_transformers=median(r_hf), vs_transformers_runs=[round(v, 3) for v in r_hf],
                cached_equals_uncached=bool(same.all()),
                first_mismatch=None if same.all() else int((~same[0]).nonzero()[0]))
