# Stage 8's matrix (section 8.6.1): from stage 5's model (models/multimodal_model_best.pth), a full and a LoRA specialist
# per domain, and the multi-domain model without and with replay, each at the command line's defaults; every model is scored
# on every held-out set. Run from nbs/ after `codellm prepare domain`:  python3 recorded/domain_runs.py recorded/domain_runs.json
import datetime, json, os, platform, sys, tempfile, time
import numpy as np
import torch
from codellm.core import Paths, seed_everything
from codellm.stages import domain_data as dd
from codellm.stages.domains import Domain, heldout_sets, loss_row, bigram_row, load_model, GENERAL_SETS, DOMAIN_BASE_STAGE

out = sys.argv[1]
paths = Paths.of()
base = paths.best(DOMAIN_BASE_STAGE)
work = Paths.of(data_dir=paths.data, models_dir=tempfile.mkdtemp())     # the prepared data; models in a scratch folder
os.symlink(base.resolve(), work.best(DOMAIN_BASE_STAGE))
RUNS = [(f'{d}, full', dict(domain=d)) for d in dd.DOMAINS] + [(f'{d}, LoRA r=8', dict(domain=d, lora=True)) for d in dd.DOMAINS] + \
       [('all five, full', dict(domain='all')), ('all five, full, replay 0.1', dict(domain='all', replay=0.1))] + \
       [('web, LoRA r=1', dict(domain='web', lora=True, lora_rank=1)), ('web, LoRA r=8, attention only', dict(domain='web', lora=True, lora_targets=('attn.qkv', 'attn.proj'))),
        ('web, LoRA r=8, learning rate 3e-4', dict(domain='web', lora=True, learning_rate=3e-4))]   # the default LoRA rate is 3e-3
sets = heldout_sets(paths)
rec = json.load(open(out)) if os.path.exists(out) else {}
rows = {r['model']: r for r in rec.get('matrix', [])}
full_kib = base.stat().st_size / 1024
if 'base (stage 5)' not in rows:
    rows['base (stage 5)'] = dict(model='base (stage 5)', **loss_row(load_model(base).model, sets), trainable_params=0, file_kib=None, train_seconds=0)
if 'bigram baseline' not in rows:
    rows['bigram baseline'] = dict(model='bigram baseline', **bigram_row(paths, sets), trainable_params=None, file_kib=None, train_seconds=None)
st = Domain()
for name, opts in RUNS:
    if name in rows: continue
    seed_everything(1337)
    opts = dict(opts); lr = opts.pop('learning_rate', None)
    r = st.train(work, opts, checkpoint=base, progress=False, learning_rate=lr)
    if lr: opts['learning_rate'] = lr
    ad = r['best_path'] if opts.get('lora') else None
    model = load_model(base if ad else r['best_path'], ad).model
    rows[name] = dict(model=name, **loss_row(model, sets), trainable_params=r['trainable_params'], train_seconds=round(r['wall_s'], 1),
                      file_kib=round(os.path.getsize(r['best_path']) / 1024, 1), steps=r['steps'], options=opts)
    print(name, {k: v for k, v in rows[name].items() if k in (*dd.DOMAINS, 'stories', 'bash', 'tool_calling', 'train_seconds', 'file_kib')}, flush=True)
    json.dump(dict(command='python3 recorded/domain_runs.py recorded/domain_runs.json (from nbs/)', date=datetime.date.today().isoformat(),
                   machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}', seed=1337,
                   start=f'models/{base.name} (stage 5 of the default chain)', matrix=list(rows.values())), open(out, 'w'), indent=1)

# the summary the page prints (each figure from the rows above)
b = rows['base (stage 5)']
general = [g for g in GENERAL_SETS if g in b]
gen = lambda r: np.mean([r[g] for g in general]) - np.mean([b[g] for g in general])
gain = lambda r, d: (b[d] - r[d]) / b[d]
full = {d: rows[f'{d}, full'] for d in dd.DOMAINS}; lo = {d: rows[f'{d}, LoRA r=8'] for d in dd.DOMAINS}
summary = dict(
    full_own_gain_min=min(gain(full[d], d) for d in dd.DOMAINS), full_own_gain_max=max(gain(full[d], d) for d in dd.DOMAINS),
    lora_own_gain_min=min(gain(lo[d], d) for d in dd.DOMAINS), lora_own_gain_max=max(gain(lo[d], d) for d in dd.DOMAINS),
    lora_share_of_gain_min=min(gain(lo[d], d) / gain(full[d], d) for d in dd.DOMAINS),
    adapter_size_share_max=max(lo[d]['file_kib'] / full[d]['file_kib'] for d in dd.DOMAINS),
    full_mean_own=float(np.mean([full[d][d] for d in dd.DOMAINS])), lora_mean_own=float(np.mean([lo[d][d] for d in dd.DOMAINS])),
    multi_mean_domain=float(np.mean([rows['all five, full'][d] for d in dd.DOMAINS])),
    replay_mean_domain=float(np.mean([rows['all five, full, replay 0.1'][d] for d in dd.DOMAINS])),
    multi_general_change=float(gen(rows['all five, full'])), replay_general_change=float(gen(rows['all five, full, replay 0.1'])),
    full_general_change_mean=float(np.mean([gen(full[d]) for d in dd.DOMAINS])), lora_general_change_mean=float(np.mean([gen(lo[d]) for d in dd.DOMAINS])),
    per_domain={d: dict(full_gain=gain(full[d], d), lora_gain=gain(lo[d], d), lora_share_of_gain=gain(lo[d], d) / gain(full[d], d),
                        full_general=gen(full[d]), lora_general=gen(lo[d]),
                        **{f'full_{g}_change': full[d][g] - b[g] for g in general}, **{f'lora_{g}_change': lo[d][g] - b[g] for g in general},
                        lora_kib=lo[d]['file_kib'], full_kib=full[d]['file_kib'], lora_seconds=lo[d]['train_seconds']) for d in dd.DOMAINS},
    # where a general loss rises under the full specialist: LoRA's rise as a share of it (the target: at most half)
    lora_rise_share={d: {g: (lo[d][g] - b[g]) / (full[d][g] - b[g]) for g in general if full[d][g] > b[g]} for d in dd.DOMAINS})
rec = json.load(open(out)); rec['summary'] = summary
json.dump(rec, open(out, 'w'), indent=1)
print(json.dumps(summary, indent=1))
