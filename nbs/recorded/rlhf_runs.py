# Stage 4's full-size runs (section 4.7 of 04_rlhf): the stage's commands at their defaults, from the chain's stage-3
# model (models/tool_calling_model_best.pth), in a scratch data and models folder. Usage, from nbs/:
#   python3 recorded/rlhf_runs.py recorded/rlhf_runs.json [run ...]     (runs already in the file are kept)
import datetime, json, os, platform, shutil, sys, tempfile, time
import torch
from codellm.core import Paths, seed_everything
from codellm.stage import get_stage
from codellm.stages.rlhf import prepare_rlhf, evaluate_reward, evaluate_rlhf, warm_up
out = sys.argv[1]; only = sys.argv[2:]
src = Paths.of()
rec = json.load(open(out)) if os.path.exists(out) else {}
old = rec.get('scratch', {})      # a rerun of some runs reuses the data, reward model and reference of the last full run
reuse = bool(only) and all(os.path.exists(os.path.join(old.get('models', '/nonexistent'), f)) for f in ('reward_model_best.pth', 'rlhf_reference.pth'))
p = Paths.of(data_dir=old['data'], models_dir=old['models']) if reuse else Paths.of(data_dir=tempfile.mkdtemp(), models_dir=tempfile.mkdtemp())
if not reuse:
    for s in ('code', 'tool_calling'): shutil.copy(src.best(s), p.best(s))
rec.update(command='python3 recorded/rlhf_runs.py recorded/rlhf_runs.json (from nbs/)', date=datetime.date.today().isoformat(),
           machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}', seed=1337,
           start='models/tool_calling_model_best.pth (stage 3 of the default chain)')
for k in ('policies', 'histories', 'evals', 'answers'): rec.setdefault(k, {})
def save(): json.dump(rec, open(out, 'w'), indent=1, default=str)

t0 = time.time()
ref = p.models / 'rlhf_reference.pth'
rec['scratch'] = dict(data=str(p.data), models=str(p.models))
if not reuse:
    seed_everything(1337); prepare_rlhf(p, verbose=False)
    seed_everything(1337); run = get_stage('reward').train(p, progress=False)
    rec['reward'] = dict(evaluate_reward(p.best('reward'), p), train_s=round(run['wall_s']), steps=run['steps'], history=run['history'])
    t1 = time.time(); rec['warm_up'] = dict(warm_up(p, p.best('tool_calling'), ref, progress=False), seconds=round(time.time() - t1))
    save(); print('reward', {k: rec['reward'][k] for k in ('val_accuracy', 'hard_accuracy')}, 'warm-up', rec['warm_up'], flush=True)

RUNS = {   # name: (stage options, training overrides): the same number of sequence passes for ppo, grpo and dpo
    'ppo': (dict(method='ppo'), {}),
    'grpo': (dict(method='grpo'), {}),
    'dpo': (dict(method='dpo'), dict(steps_per_epoch=96, eval_every=32)),
    'ppo_no_kl': (dict(method='ppo', kl_coef=0.0), dict(steps_per_epoch=48, eval_every=16)),   # reward hacking: no penalty, twice as long
    'dpo (beta 0.5)': (dict(method='dpo', beta=0.5), dict(steps_per_epoch=96, eval_every=32)),    # the same, tied closer to the reference
    'grpo (kl 0.3)': (dict(method='grpo', kl_coef=0.3), {}),
}
KEEP = ('judge_score', 'validity', 'ended', 'length', 'reward', 'kl')
for name, (opts, kw) in RUNS.items():
    if only and name not in only: continue
    seed_everything(1337)
    run = get_stage('rlhf').train(p, dict(reference=str(ref), **opts), progress=False, **kw)
    ev = evaluate_rlhf(p.best('rlhf'), p, forgetting=(name == 'ppo'))
    rec['policies'][name] = dict(findings=ev['ours'], **{k: ev.get(k) for k in KEEP}, wall_s=round(run['wall_s']), steps=run['steps'],
                                 groups=ev['groups']['ours'], **{k: v for k, v in ev.items() if 'tool_accuracy' in k or 'bash_ok' in k})
    if name == 'ppo':       # the stage-3 model and the reference, on the same requests
        rec['policies'] = {'stage 3': dict(findings=ev['baseline'], **{k: ev.get(f'baseline_{k}') for k in KEEP}, groups=ev['groups']['baseline']),
                           'reference (warm-up)': dict(findings=ev['before'], **{k: ev.get(f'before_{k}') for k in KEEP}, groups=ev['groups']['before']),
                           **rec['policies']}
    if name == 'ppo_no_kl':  # the last policy too: where the run ended, whatever the budget says
        last = evaluate_rlhf(p.last('rlhf'), p, forgetting=False, baseline='none')
        rec['policies']['ppo_no_kl (last)'] = dict(findings=last['ours'], **{k: last.get(k) for k in KEEP}, groups=last['groups']['ours'])
        rec['answers']['ppo_no_kl (last)'] = last['answers']
    rec['histories'][name] = run['history'].get('rl') or [dict(step=s, loss=l) for s, l in zip(run['history']['step'], run['history']['train_loss'])]
    rec['evals'][name] = run['history']['eval']
    rec['answers'][name] = ev['answers']
    rec['seconds'] = round(time.time() - t0) + (rec.get('seconds', 0) if reuse else 0)
    save(); print(name, rec['policies'][name], flush=True)
