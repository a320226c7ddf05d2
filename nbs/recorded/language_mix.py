# The stage-1 mix experiment (section 1.6): each mix prepared, trained at the default budget, and evaluated on every held-out set.
import json, platform, random, sys, tempfile, time, datetime, os
from codellm.core import Paths, seed_everything
from codellm.checkpoint import load_checkpoint
import codellm.stages.language_pretraining as lp
from codellm.stages.language_pretraining import prepare_language, evaluate_language
from codellm.stages.english_text import Lexicon, real_sentences
from codellm.stages.tool_calling import pseudo_word
from codellm.stages.tool_requests import span_copy_loss
from codellm.training import train_stage
DEFAULT = 'stories:0.3,examples:0.5,definitions:0.2'

def _value(r):
    k = r.random()
    return str(r.randint(0, 10 ** r.randint(1, 5))) if k < 0.5 else pseudo_word(r) if k < 0.8 else r.choice(['red', 'blue', 'stone', 'river', 'lamp', 'seven'])

def copy_document(r, sentences):
    "Facts stated, two real sentences, the facts recalled in another order, then lists repeated: text that rewards copying from the context."
    facts = [(pseudo_word(r, 2).capitalize() if r.random() < 0.5 else r.choice(['the box', 'the door', 'the ship', 'my key', 'the file', 'the road']),
              ' '.join(_value(r) for _ in range(r.randint(1, 4)))) for _ in range(r.randint(2, 4))]
    parts = [r.choice([f"The word for {n} is {v}.", f"{n} is called {v}.", f"Remember {n}: {v}.", f"Note that {n} = {v}."]) for n, v in facts]
    parts += r.sample(sentences, 2); r.shuffle(facts)
    parts += [r.choice([f"So {n} is {v}.", f"Again, {n}: {v}.", f"{n} was {v}.", f"And {n} = {v}."]) for n, v in facts]
    for _ in range(r.randint(1, 3)):
        span = ' '.join(_value(r) for _ in range(r.randint(3, 10)))
        parts.append(f"The list was {span}, and once more it was {span}.")
    return ' '.join(parts)

def with_copies(share):
    "load_corpus with `share` of the training documents replaced by copy documents (the copy rows of the table)."
    def load(*a, **k):
        c = original(*a, **k)
        r, sents = random.Random(7), real_sentences(Lexicon.load(), 'train')['examples']
        n = int(len(c.train) * share); c.train[:n] = [copy_document(r, sents) for _ in range(n)]; r.shuffle(c.train)
        return c
    return load
original = lp.load_corpus

RUNS = [  # (name, --mix, use WordNet, vocabulary, steps, learning rate, batch, share of copy documents)
    ('generator only, built-in words (the old default)', 'stories:1', False, 4096, 600, 2e-3, 16, 0),
    ('generator only, WordNet words', 'stories:1', True, 4096, 600, 2e-3, 16, 0),
    ('stories 0.3, examples 0.5, definitions 0.2', DEFAULT, True, 4096, 600, 2e-3, 16, 0),
    ('stories 0.5, examples 0.3, definitions 0.2', 'stories:0.5,examples:0.3,definitions:0.2', True, 4096, 600, 2e-3, 16, 0),
    ('WordNet sentences only: examples 0.7, definitions 0.3', 'examples:0.7,definitions:0.3', True, 4096, 600, 2e-3, 16, 0),
    ('stories 0.3, examples 0.5, definitions 0.2, vocabulary 2048', DEFAULT, True, 2048, 600, 2e-3, 16, 0),
    ('stories 0.3, examples 0.5, definitions 0.2, vocabulary 1024', DEFAULT, True, 1024, 600, 2e-3, 16, 0),
    ('stories 0.3, examples 0.5, definitions 0.2, 300 steps', DEFAULT, True, 4096, 300, 2e-3, 16, 0),
    ('stories 0.3, examples 0.5, definitions 0.2, 1200 steps', DEFAULT, True, 4096, 1200, 2e-3, 16, 0),
    ('learning rate 4e-3 (the default)', DEFAULT, True, 4096, 600, 4e-3, 16, 0),
    ('learning rate 8e-3', DEFAULT, True, 4096, 600, 8e-3, 16, 0),
    ('learning rate 4e-3, batch 32, 300 steps', DEFAULT, True, 4096, 300, 4e-3, 32, 0),
    ('learning rate 4e-3, a tenth copy documents', DEFAULT, True, 4096, 600, 4e-3, 16, 0.1),
    ('learning rate 4e-3, three tenths copy documents', DEFAULT, True, 4096, 600, 4e-3, 16, 0.3)]
out = sys.argv[1]; only = sys.argv[2:] 
rows = json.load(open(out))['rows'] if os.path.exists(out) else []
done = {r['run'] for r in rows}
for name, mix, wordnet, vocab, steps, lr, batch, copies in RUNS:
    if name in done or (only and not any(o in name for o in only)): continue
    t0 = time.time()
    p = Paths.of(data_dir=tempfile.mkdtemp(), models_dir=tempfile.mkdtemp())
    lp.load_corpus = with_copies(copies) if copies else original
    seed_everything(1337)
    prepare_language(p, mix=mix, vocab_size=vocab, verbose=False, lexicon=None if wordnet else Lexicon([], {}))
    seed_everything(1337)
    run = train_stage('language', p, progress=False, steps_per_epoch=steps, learning_rate=lr, batch_size=batch)
    ev = evaluate_language(run['best_path'], p, n_samples=1)
    meta = json.load(open(p.meta('language')))
    from codellm.tokenizer import BPETokenizer
    from codellm.stages import bash_data
    from codellm.chat_format import encode_example
    tok = BPETokenizer.load(p.tokenizer)               # what the vocabulary costs stage 2: instruction pairs that no longer fit 256 tokens
    lens = [len(encode_example(tok, q.task, q.script)[0]) for q in bash_data.make_instruction_pairs(500, seed=0)]
    copy = span_copy_loss(load_checkpoint(run['best_path']))   # loss on a random span's first and second occurrence
    rows.append(dict(run=name, mix=mix, vocab=vocab, steps=steps, lr=lr, batch=batch, copies=copies, copy_first=copy['first'], copy_second=copy['second'], train_s=round(run['wall_s']), stage2_pairs_over_context=sum(n > 257 for n in lens) / len(lens), **{f'{k}_{m}': v for k, s in ev['per_set'].items() for m, v in s.items()}, seconds=round(time.time() - t0)))
    print(rows[-1], flush=True)
    json.dump(dict(command='python3 nbs/recorded/language_mix.py nbs/recorded/language_mix.json', date=datetime.date.today().isoformat(),
                   machine=f'{platform.machine()}, {os.cpu_count()} CPUs, torch CPU', seed=1337,
                   note='each run has its own tokenizer trained on its own mix; the held-out texts are the same', rows=rows), open(out, 'w'), indent=1)
