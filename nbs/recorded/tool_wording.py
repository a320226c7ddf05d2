# Stage 3's data and budget measured on both held-out sets (section 3.7): each row prepared, trained from the stage-2 model
# (models/code_model_best.pth) and evaluated on the templated held-out prompts and on the requests in our own words (3c).
import datetime, json, os, platform, sys, tempfile, time
import torch
from codellm.core import Paths, seed_everything
from codellm.stages.tool_calling import prepare_tool_calling, evaluate_tool_calling
from codellm.training import train_stage
RUNS = [  # (name, --more, steps)
    ("3.2's templates only (--more 0)", 0.0, 400),
    ("half the requests from 3c's sources (the default)", 0.5, 400),
    ('the default data, three times the steps', 0.5, 1200)]
KEEP = ('valid_calls', 'tool_accuracy', 'exact_arguments', 'end_to_end', 'copy_request_to_call', 'copy_result_to_answer',
        'router', 'own_words_baseline', 'own_words_tool_accuracy', 'own_words_end_to_end', 'own_words_copy_request_to_call',
        'own_words_copy_result_to_answer', 'own_words_n')
out = sys.argv[1]; only = sys.argv[2:]
start = Paths.of().best('code')
rows = json.load(open(out))['rows'] if os.path.exists(out) else []
done = {r['run'] for r in rows}
for name, more, steps in RUNS:
    if name in done or (only and not any(o in name for o in only)): continue
    t0 = time.time()
    p = Paths.of(data_dir=tempfile.mkdtemp(), models_dir=tempfile.mkdtemp())
    seed_everything(1337)
    prepare_tool_calling(p, checkpoint=start, more=more, verbose=False)
    seed_everything(1337)
    run = train_stage('tool_calling', p, checkpoint=start, progress=False, steps_per_epoch=steps)
    ev = evaluate_tool_calling(run['best_path'], p, baseline=False)
    rows.append(dict(run=name, more=more, steps=steps, batch=16, train_s=round(run['wall_s']), router_accuracy=ev['router_accuracy'][ev['router']],
                     **{k: ev[k] for k in KEEP}, seconds=round(time.time() - t0)))
    print(rows[-1], flush=True)
    json.dump(dict(command='python3 recorded/tool_wording.py recorded/tool_wording.json (from nbs/)', date=datetime.date.today().isoformat(),
                   machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}', seed=1337,
                   start=f'models/{start.name} (stage 2 of the default chain)', rows=rows), open(out, 'w'), indent=1)
