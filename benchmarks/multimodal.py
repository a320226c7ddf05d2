"""Stage 5's data preparation: `codellm prepare multimodal` for 1,000 pictures (draw, save the PNGs, tokenize the
programs, write the arrays and the meta), in a scratch folder with a tokenizer trained on the programs themselves
(the stage-1 tokenizer when one is prepared)."""
import shutil, tempfile, time
from pathlib import Path
from .common import median

TARGET_S = 60.0        # issue 16: preparing 1,000 pictures takes under a minute


def bench_multimodal_prepare(num_images: int = 1000, repeats: int = 3, log=print) -> dict:
    from codellm.core import Paths
    from codellm.tokenizer import BPETokenizer
    from codellm.multimodal.images import make_scenes, program
    from codellm.stages.multimodal import prepare_multimodal
    d = Path(tempfile.mkdtemp())
    try:
        src = Paths.of().tokenizer
        if src.is_file(): shutil.copy(src, d / 'tokenizer.json')
        else: BPETokenizer.train([program(s) for s in make_scenes(90)['train']], vocab_size=600).save(d / 'tokenizer.json')
        paths = Paths.of(data_dir=d, models_dir=d / 'models')
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter(); prepare_multimodal(paths, num_images=num_images, verbose=False); runs.append(time.perf_counter() - t0)
    finally: shutil.rmtree(d, ignore_errors=True)
    s = median(runs)
    log(f"prepare multimodal: {num_images} pictures in {s:.1f} s (median of {repeats})")
    return dict(settings=dict(num_images=num_images, repeats=repeats), seconds=round(s, 2), seconds_runs=[round(r, 2) for r in runs],
                target_s=TARGET_S, meets_target=s < TARGET_S)
