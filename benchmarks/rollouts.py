"""PPO rollouts (stage 4): answers for a batch of prompts decoded together with the KV cache, as
`codellm.rlhf.ppo.sample_responses` does, against the same prompts sampled one at a time.

`sample_responses` left-pads the prompts to one length and calls `codellm.generation.generate` once for the batch;
this benchmark calls `generate` the same way (temperature 1, the KV cache) on random prompt ids, with no stop tokens,
so that every answer is exactly `new_tokens` long and both contenders do the same work. The tiny preset at its own
context (256): 24 prompt tokens + 160 new ones, the stage's default answer length."""
import torch
from codellm.generation import generate
from .common import interleaved, median, paired_ratios, timed
from .models import VOCAB, codellm_model

TARGET = 4.0           # issue 15: batched rollouts >= 4x the tokens/s of one prompt at a time


def bench_rollouts(size: str = 'tiny', batch: int = 32, new_tokens: int = 160, prompt_len: int = 24, repeats: int = 5,
                   log=print) -> dict:
    model = codellm_model(size).eval()
    prompts = torch.randint(VOCAB, (batch, prompt_len), generator=torch.Generator().manual_seed(1))
    def batched():
        g = torch.Generator().manual_seed(0)
        return generate(model, prompts, new_tokens, temperature=1.0, generator=g)
    def one_at_a_time():
        g = torch.Generator().manual_seed(0)
        return [generate(model, prompts[i:i + 1], new_tokens, temperature=1.0, generator=g) for i in range(batch)]
    out_b, out_1 = batched(), one_at_a_time()                          # warm-up, and a check of the work done
    if out_b.shape != (batch, prompt_len + new_tokens) or any(o.shape != (1, prompt_len + new_tokens) for o in out_1):
        raise RuntimeError('a contender did not produce every token')
    log(f"rollouts {size}: {batch} prompts x ({prompt_len} + {new_tokens} new tokens), batched vs one at a time, {repeats} repeats")
    tokens = batch * new_tokens
    with torch.inference_mode():
        runs = interleaved({'batched_kv_cache': lambda: tokens / timed(batched),
                            'one_prompt_at_a_time': lambda: tokens / timed(one_at_a_time)}, repeats)
    r = paired_ratios(runs['batched_kv_cache'], runs['one_prompt_at_a_time'])
    return dict(settings=dict(preset=size, batch=batch, prompt_tokens=prompt_len, new_tokens=new_tokens, temperature=1.0,
                              kv_cache=True, precision='fp32', repeats=repeats),
                results=[dict(impl=k, tokens_per_s=median(v), tokens_per_s_runs=[round(t, 1) for t in v]) for k, v in runs.items()],
                speedup=median(r), speedup_runs=[round(v, 3) for v in r], target=TARGET, meets_target=median(r) >= TARGET)
