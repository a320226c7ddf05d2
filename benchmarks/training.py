"""Training throughput: tokens per second of forward + backward + gradient clipping + AdamW step (what one
`Trainer` step does), codellm vs transformers GPT-2, bf16 autocast (codellm's default on CPU) and fp32."""
import torch
from codellm.training import autocast_ctx, make_optimizer
from .common import interleaved, median, paired_ratios, timed
from .models import VOCAB, attn_implementation, codellm_model, hf_gpt2, lm_loss, n_params

BATCH = {'tiny': 8, 'small': 4, 'medium': 2, 'large': 1}   # sequences per step: 2048 tokens for tiny and small
TARGET = 1.2                                                 # issue 7: >= 1.2x transformers GPT-2, same sizes


def make_trainer_step(model, kind: str, x, y, amp: bool):
    "One optimizer step as the codellm Trainer does it (same AdamW, same autocast) for either model."
    opt = make_optimizer(model, lr=1e-3, weight_decay=0.1)   # fused AdamW on CPU, for both
    dev = torch.device('cpu')
    def step():
        with autocast_ctx(dev, amp): loss = lm_loss(model, kind, x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        return loss
    return step


def bench_training(presets=('tiny', 'small'), repeats: int = 5, steps: int = 3, warmup: int = 2,
                   precisions=('bf16', 'fp32'), batch: dict | None = None, compile: bool = False, log=print) -> dict:
    """Tokens/s per (preset, precision, implementation): medians over `repeats`, contenders interleaved.
    `compile=True` adds `codellm_compiled`: the same model under `torch.compile` (what `--use-compile` does);
    its compile time is reported apart (`compile_s`), not counted in the throughput."""
    results, ratios, compile_s = [], [], {}
    for size in presets:
        ours = codellm_model(size).train()
        hf = hf_gpt2(ours.config).train()
        contenders = [('codellm', ours), ('transformers', hf)]
        if compile:
            import torch._dynamo as dynamo      # one compiled graph per precision: room for both
            dynamo.config.cache_size_limit = max(dynamo.config.cache_size_limit, 64)
            contenders.append(('codellm_compiled', torch.compile(codellm_model(size).train())))
        B, T = (batch or BATCH)[size], ours.config.block_size
        g = torch.Generator().manual_seed(0)
        x = torch.randint(VOCAB, (B, T), generator=g)
        y = torch.roll(x, -1, dims=1)
        steps_fns = {}
        for prec in precisions:
            for kind, model in contenders:
                step = make_trainer_step(model, 'transformers' if kind == 'transformers' else 'codellm', x, y, amp=prec == 'bf16')
                t0 = timed(step)
                for _ in range(warmup - 1): step()
                if kind == 'codellm_compiled': compile_s[f'{size}/{prec}'] = round(t0, 1)
                steps_fns[(kind, prec)] = step
        fns = {k: (lambda s=s: B * T * steps / timed(lambda: [s() for _ in range(steps)])) for k, s in steps_fns.items()}
        log(f"training {size}: B={B} T={T}, {len(fns)} contenders x {repeats} repeats x {steps} steps")
        runs = interleaved(fns, repeats)
        for (kind, prec), tps in runs.items():
            model = hf if kind == 'transformers' else ours
            results.append(dict(preset=size, precision=prec, impl=kind, tokens_per_s=median(tps),
                                tokens_per_s_runs=[round(t, 1) for t in tps], batch=B, block=T, params=n_params(model)))
        for prec in precisions:
            a, b = runs[('codellm', prec)], runs[('transformers', prec)]
            r = paired_ratios(a, b)
            ratios.append(dict(preset=size, precision=prec, ratio=median(r), ratio_runs=[round(v, 3) for v in r],
                               ratio_of_medians=median(a) / median(b), target=TARGET, meets_target=median(r) >= TARGET))
            if compile:
                rc = paired_ratios(runs[('codellm_compiled', prec)], b)
                ratios[-1].update(compiled_ratio=median(rc), compiled_ratio_runs=[round(v, 3) for v in rc])
    return dict(settings=dict(presets=list(presets), repeats=repeats, steps_per_measurement=steps, warmup_steps=warmup,
                              vocab_size=VOCAB, optimizer='AdamW (codellm.training.make_optimizer, fused), grad clip 1.0',
                              data='random token ids, the same for both models',
                              hf_attn_implementation=attn_implementation(hf), compiled=compile,
                              threads=torch.get_num_threads()),
                results=results, ratios=ratios, compile_s=compile_s)
