"""Peak memory of each configuration, each in a fresh Python process.

PyTorch's CPU allocations are invisible to `tracemalloc`, so this measures what the operating system gave the process:
its peak resident set size. Every worker imports the same modules (torch, transformers, codellm) and makes its input;
then, on Linux, it resets the kernel's peak-RSS counter (`echo 5 > /proc/self/clear_refs`) and reads `VmHWM` from
/proc/self/status (the baseline), builds its model, runs its workload (3 training steps, or one generation) and reads
`VmHWM` again. `peak_mb` is that high-water mark; `workload_mb` = peak - baseline is what the model, gradients,
optimizer state, activations and allocator slack added on top of the imports. Without the reset (other systems), the
counter is `getrusage(RUSAGE_SELF).ru_maxrss`, whose import-time peak can hide a small workload: `method` says which.
The allocator keeps freed memory, so these are upper bounds on what the tensors needed, compared like for like.
"""
import json, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status_kb(field: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'): return int(line.split()[1])
    raise KeyError(field)


def reset_peak() -> str:
    "Reset the peak-RSS counter where the kernel allows it; returns the method used to read the peak."
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
        _status_kb('VmHWM')
        return 'VmHWM after clear_refs reset'
    except (OSError, KeyError): return 'ru_maxrss (no reset: includes the import-time peak)'


def peak_mb(method: str) -> float:
    if method.startswith('VmHWM'): return _status_kb('VmHWM') / 1024
    import resource
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == 'darwin' else r / 1024     # bytes on macOS, KiB on Linux


def worker(spec: dict) -> dict:
    "Run one configuration in this process; returns its memory figures."
    import torch, transformers                                   # noqa: F401  (same imports for every configuration)
    import codellm.generation, codellm.training                  # noqa: F401
    from .models import VOCAB, n_params
    torch.set_grad_enabled(spec['task'] == 'train')
    x = torch.randint(VOCAB, (spec['batch'], spec['tokens']), generator=torch.Generator().manual_seed(0))
    # Warm-up on a micro model of the same kind: lazy imports (transformers' generation code) and one-off kernel
    # set-up happen here, not in the measured workload.
    workload(spec, x[:1, :8], micro=True)
    import gc; gc.collect()
    method = reset_peak()
    base = peak_mb(method)
    model = workload(spec, x)
    peak = peak_mb(method)
    return dict(baseline_mb=round(base, 1), peak_mb=round(peak, 1), workload_mb=round(peak - base, 1),
                params=n_params(model), method=method)


def workload(spec: dict, x, micro: bool = False):
    "Build the model of `spec` (or a micro one) and run its task on `x`; returns the model."
    import torch
    from codellm.model import GPT, GPTConfig
    from .models import VOCAB, codellm_model, hf_gpt2
    block = spec.get('block_size')
    if micro: ours = GPT(GPTConfig(vocab_size=VOCAB, block_size=64, n_layer=1, n_head=2, n_embd=16))
    else: ours = codellm_model(spec['size'], **({'block_size': block} if block else {}))
    model = ours if spec['impl'] == 'codellm' else hf_gpt2(ours.config)
    new = 4 if micro else spec['new_tokens'] if spec['task'] == 'generate' else 0
    if spec['task'] == 'train':
        from .training import make_trainer_step
        step = make_trainer_step(model.train(), spec['impl'], x, torch.roll(x, -1, 1), amp=spec['precision'] == 'bf16')
        for _ in range(1 if micro else 3): step()
    else:
        from codellm.generation import generate
        model.eval()
        if spec['impl'] == 'codellm': generate(model, x, new, temperature=0, use_cache=spec['cache'])
        else: model.generate(x, max_new_tokens=new, min_new_tokens=new, do_sample=False, use_cache=True)
    return model


def measure(spec: dict, timeout: float = 600) -> dict:
    "Run `spec` in a fresh interpreter (`python -m benchmarks.memory SPEC`)."
    r = subprocess.run([sys.executable, '-m', 'benchmarks.memory', json.dumps(spec)], cwd=REPO, capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0: raise RuntimeError(f"memory worker {spec} failed:\n{r.stderr[-2000:]}")
    return {**spec, **json.loads(r.stdout.strip().splitlines()[-1])}


def bench_memory(presets=('tiny', 'small'), precisions=('bf16', 'fp32'), generation: bool = True, new_tokens: int = 256,
                 batch: dict | None = None, log=print) -> dict:
    if sys.platform == 'win32': return dict(skipped='resource.getrusage is not available on Windows')
    from .generation import BLOCK
    from .training import BATCH
    from codellm.model import PRESETS
    specs = [dict(task='train', size=s, precision=p, impl=i, batch=(batch or BATCH)[s], tokens=PRESETS[s]['block_size'])
             for s in presets for p in precisions for i in ('codellm', 'transformers')]
    if generation:
        specs += [dict(task='generate', size='tiny', precision='fp32', impl='codellm', cache=True, batch=1, tokens=16, new_tokens=new_tokens, block_size=BLOCK),
                  dict(task='generate', size='tiny', precision='fp32', impl='codellm', cache=False, batch=1, tokens=16, new_tokens=new_tokens, block_size=BLOCK),
                  dict(task='generate', size='tiny', precision='fp32', impl='transformers', cache=True, batch=1, tokens=16, new_tokens=new_tokens, block_size=BLOCK)]
    log(f"memory: {len(specs)} configurations, one fresh process each")
    results = [measure(s) for s in specs]
    return dict(method=f"peak RSS of a fresh process per configuration ({results[0]['method']}); "
                       "workload_mb = peak - baseline after imports", results=results)


if __name__ == '__main__':
    print(json.dumps(worker(json.loads(sys.argv[1]))))
