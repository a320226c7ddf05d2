"""Helpers shared by the benchmarks: the machine's description, load average, medians, interleaved timing."""
import datetime, os, platform, statistics, sys, time
from typing import Callable


def load_average() -> list[float] | None:
    "1, 5 and 15-minute load averages (None where the OS has none)."
    try: return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError): return None


def cpu_model() -> str:
    "The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.lower().startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or 'unknown'


def _version(mod: str) -> str | None:
    try: return __import__(mod).__version__
    except ImportError: return None


def hardware() -> dict:
    "What the numbers were measured on."
    import torch
    return dict(date=datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
                cpu_model=cpu_model(), cpu_count=os.cpu_count(),
                cpu_affinity=len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None,
                torch_threads=torch.get_num_threads(), cuda=torch.cuda.is_available(),
                python=platform.python_version(), platform=platform.platform(),
                torch=torch.__version__, transformers=_version('transformers'), tokenizers=_version('tokenizers'),
                numpy=_version('numpy'), command=' '.join(['python -m benchmarks', *sys.argv[1:]]))


def median(xs) -> float: return float(statistics.median(xs))


def interleaved(fns: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call each function once per repeat, rotating the order every repeat (A B C, B C A, C A B, ...), so that a
    slow spell of a shared machine hits every contender about equally. Each function returns its own measurement."""
    names, out = list(fns), {n: [] for n in fns}
    for r in range(repeats):
        k = r % len(names)
        for n in names[k:] + names[:k]: out[n].append(fns[n]())
    return out


def timed(fn: Callable[[], object]) -> float:
    "Wall-clock seconds of one call."
    t = time.perf_counter(); fn(); return time.perf_counter() - t


def paired_ratios(a: list[float], b: list[float]) -> list[float]:
    "a[i] / b[i]: each repeat's ratio, measured close together in time."
    return [x / y for x, y in zip(a, b)]
