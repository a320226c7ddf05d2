# The stage-1 mix experiment (section 1.6): each mix prepared, trained at the default budget, and evaluated on every held-out set.
import json, platform, sys, tempfile, time, datetime, os
from codellm.core import Paths, seed_everything
from codellm.stages.language_pretraining import prepare_language, evaluate_language
from codellm.stages.english_text import Lexicon
from codellm.training import train_stage
DEFAULT = 'stories:0.3,examples:0.5,definitions:0.2'
RUNS = [  # (name, --mix, use WordNet, vocabulary, steps)
    ('generator only, built-in words (the old default)', 'stories:1', False, 4096, 600),
    ('generator only, WordNet words', 'stories:1', True, 4096, 600),
    ('stories 0.3, examples 0.5, definitions 0.2', DEFAULT, True, 4096, 600),
    ('stories 0.5, examples 0.3, definitions 0.2', 'stories:0.5,examples:0.3,definitions:0.2', True, 4096, 600),
    ('WordNet sentences only: examples 0.7, definitions 0.3', 'examples:0.7,definitions:0.3', True, 4096, 600),
    ('stories 0.3, examples 0.5, definitions 0.2, vocabulary 2048', DEFAULT, True, 2048, 600),
    ('stories 0.3, examples 0.5, definitions 0.2, vocabulary 1024', DEFAULT, True, 1024, 600),
    ('stories 0.3, examples 0.5, definitions 0.2, 300 steps', DEFAULT, True, 4096, 300),
    ('stories 0.3, examples 0.5, definitions 0.2, 1200 steps', DEFAULT, True, 4096, 1200)]
out = sys.argv[1]; only = sys.argv[2:] 
rows = json.load(open(out))['rows'] if os.path.exists(out) else []
done = {r['run'] for r in rows}
for name, mix, wordnet, vocab, steps in RUNS:
    if name in done or (only and not any(o in name for o in only)): continue
    t0 = time.time()
    p = Paths.of(data_dir=tempfile.mkdtemp(), models_dir=tempfile.mkdtemp())
    seed_everything(1337)
    prepare_language(p, mix=mix, vocab_size=vocab, verbose=False, lexicon=None if wordnet else Lexicon([], {}))
    seed_everything(1337)
    run = train_stage('language', p, progress=False, steps_per_epoch=steps)
    ev = evaluate_language(run['best_path'], p, n_samples=1)
    meta = json.load(open(p.meta('language')))
    from codellm.tokenizer import BPETokenizer
    from codellm.stages import bash_data
    from codellm.chat_format import encode_example
    tok = BPETokenizer.load(p.tokenizer)               # what the vocabulary costs stage 2: instruction pairs that no longer fit 256 tokens
    lens = [len(encode_example(tok, q.task, q.script)[0]) for q in bash_data.make_instruction_pairs(500, seed=0)]
    rows.append(dict(run=name, mix=mix, vocab=vocab, steps=steps, train_s=round(run['wall_s']), stage2_pairs_over_context=sum(n > 257 for n in lens) / len(lens), **{f'{k}_{m}': v for k, s in ev['per_set'].items() for m, v in s.items()}, seconds=round(time.time() - t0)))
    print(rows[-1], flush=True)
    json.dump(dict(command='python3 nbs/recorded/language_mix.py nbs/recorded/language_mix.json', date=datetime.date.today().isoformat(),
                   machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch CPU', seed=1337,
                   note='each run has its own tokenizer trained on its own mix; the held-out texts are the same', rows=rows), open(out, 'w'), indent=1)
