# Stage 5's full-size runs (section 5.7 of 05_multimodal): the stage's commands at their defaults, from the chain's stage-4
# model (models/rlhf_model_best.pth), in a scratch data and models folder, each evaluated on all 100 pictures of each split.
# Usage, from nbs/:   python3 recorded/multimodal_runs.py recorded/multimodal_runs.json [run ...]   (runs already in the file are kept)
import datetime, json, os, platform, shutil, sys, tempfile, time
import torch
from codellm.core import Paths, seed_everything
from codellm.stage import get_stage
from codellm.stages.multimodal import prepare_multimodal, evaluate_multimodal
out = sys.argv[1]; only = sys.argv[2:]
src = Paths.of()
rec = json.load(open(out)) if os.path.exists(out) else {}
# the guide's start is stage 4's model; any earlier text checkpoint works, and the record says which one this run used
start = next(s for s in ('rlhf', 'tool_calling', 'code', 'language') if src.best(s).is_file())
rec.update(command='python3 recorded/multimodal_runs.py recorded/multimodal_runs.json (from nbs/)', date=datetime.date.today().isoformat(),
           machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}', seed=1337,
           start=f'models/{start}_model_best.pth (the default chain)')
rec.setdefault('runs', {})
def save(): json.dump(rec, open(out, 'w'), indent=1, default=str)

RUNS = {   # name: (prepare options, stage options, training overrides)
    'default': ({}, {}, {}),
    'one phase': ({}, dict(align_steps=0), {}),
    '3000 pictures': (dict(num_images=3000), {}, {}),
}
for name, (prep, opts, kw) in RUNS.items():
    if only and name not in only: continue
    p = Paths.of(data_dir=tempfile.mkdtemp(), models_dir=tempfile.mkdtemp())
    shutil.copy(src.best(start), p.best('rlhf'))           # where the stage looks for its start
    t0 = time.time()
    meta = prepare_multimodal(p, seed=1337, verbose=False, **prep)
    prep_s = round(time.time() - t0, 1)
    seed_everything(1337)
    run = get_stage('multimodal').train(p, opts, progress=False, **kw)
    t1 = time.time()
    row = evaluate_multimodal(p.best('multimodal'), p, details=True)
    rec['runs'][name] = dict(row={k: v for k, v in row.items() if k != 'per_image'}, prepare_s=prep_s, counts=meta['counts'],
                             train_s=round(run['wall_s']), steps=run['steps'], evaluate_s=round(time.time() - t1),
                             best_val_loss=run['best_val_loss'], history=run['history'],
                             per_image={s: [{k: v for k, v in r.items() if k != 'code'} for r in rows] for s, rows in row['per_image'].items()})
    save(); print(name, {k: round(row[k], 3) for k in ('val_iou', 'val_iou_shapes', 'val_blind_iou', 'val_runs', 'comp_iou')}, flush=True)
    shutil.rmtree(p.data, ignore_errors=True); shutil.rmtree(p.models, ignore_errors=True)
