# Stage 7 at the command line's size (section 7.5): each row prepares expert runs, trains from stage 6's model
# (models/rag_model_best.pth) and evaluates on held-out objectives (held-out functions and wording) and the own-words set.
import datetime, json, os, platform, sys, tempfile, time
import torch
from codellm.core import Paths, seed_everything
from codellm.stages.agents import prepare_agent, evaluate_agent
from codellm.training import train_stage
RUNS = [  # (name, --fail-share)
    ('the defaults (half the runs with a repair)', 0.5),
    ('no repairs in the data (--fail-share 0)', 0.0)]
out = sys.argv[1]; only = sys.argv[2:]
start = Paths.of().best('rag')
rows = json.load(open(out))['rows'] if os.path.exists(out) else []
done = {r['run'] for r in rows}
for name, share in RUNS:
    if name in done or (only and not any(o in name for o in only)): continue
    t0 = time.time()
    p = Paths.of(data_dir=tempfile.mkdtemp(), models_dir=tempfile.mkdtemp())
    seed_everything(1337)
    meta = prepare_agent(p, checkpoint=start, fail_share=share, verbose=False)
    seed_everything(1337)
    run = train_stage('agent', p, checkpoint=start, progress=False)
    ev = evaluate_agent(run['best_path'], p, before=start)
    f = ev['families']
    rows.append(dict(run=name, fail_share=share, train_runs=meta['train_examples'], steps=run['steps'], train_s=round(run['wall_s']),
                     write=ev['ours'], write_one_attempt=ev['one_attempt'], loop_vs_one_attempt=ev['loop_vs_one_attempt'],
                     fix=ev['fix_success'], fix_one_attempt=f['fix']['one_attempt'], two_step=ev['two_step_success'],
                     own_words=ev['own_words_success'], baseline=ev['baseline'], before=ev['before'], n_per_family=f['write']['n'],
                     failures=ev['failures'], by_budget={k: v['by_budget'] for k, v in f.items()},
                     max_steps_used=ev['max_steps_used'], max_seconds_used=ev['max_seconds_used'], guide=ev['guide_objective'],
                     seconds=round(time.time() - t0)))
    print(rows[-1], flush=True)
    json.dump(dict(command='python3 recorded/agent_runs.py recorded/agent_runs.json (from nbs/)', date=datetime.date.today().isoformat(),
                   machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}', seed=1337,
                   start=f'models/{start.name} (stage 6 of the default chain)', rows=rows), open(out, 'w'), indent=1)
