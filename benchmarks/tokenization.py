"""Tokenizer training and encoding throughput (MB of UTF-8 text per second): codellm's pure-Python BPETokenizer vs
Hugging Face `tokenizers` (Rust) with a byte-level BPE trainer, the same vocabulary size, special tokens and text.

The text is what `codellm prepare language` trains its tokenizer on: generated stories plus Python/shell source from
this machine (`codellm.stages.language_pretraining.code_sample`). Encoding is timed one document at a time (as `prepare_language` does)
with a freshly loaded tokenizer each repeat, so neither side starts with a warm cache. Note that `tokenizers` trains
on all cores; codellm trains on one."""
import os
from codellm.stages.language_pretraining import code_sample, generate_stories
from codellm.tokenizer import SPECIAL_TOKENS, BPETokenizer
from .common import interleaved, median, paired_ratios, timed


def corpus(mb: float = 2.0, code_fraction: float = 0.3, seed: int = 0) -> list[str]:
    "About `mb` MB of documents: stories, then the code sample cut into 6 kB pieces."
    code = code_sample(max_bytes=int(mb * 1e6 * code_fraction))
    stories, n, target = [], 0, mb * 1e6 - len(code.encode())
    for s in generate_stories(int(target / 300) + 10, seed=seed):   # stories are ~370 bytes; trim to the budget
        if n >= target: break
        stories.append(s); n += len(s.encode())
    return stories + [code[i:i + 6000] for i in range(0, len(code), 6000)]


def hf_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def hf_train(docs, vocab_size):
    from tokenizers import pre_tokenizers, trainers
    tok = hf_tokenizer()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(docs, trainer)
    return tok


def bench_tokenizer(mb: float = 2.0, vocab_size: int = 4096, repeats: int = 3, log=print) -> dict:
    from tokenizers import Tokenizer
    docs = corpus(mb)
    nbytes = sum(len(d.encode('utf-8')) for d in docs)
    log(f"tokenizer: {nbytes / 1e6:.2f} MB in {len(docs)} documents, vocab {vocab_size}, {repeats} repeats")
    ours, hf = BPETokenizer.train(docs, vocab_size), hf_train(docs, vocab_size)
    ours_json, hf_json = ours.to_dict(), hf.to_str()
    train = interleaved({'codellm': lambda: nbytes / 1e6 / timed(lambda: BPETokenizer.train(docs, vocab_size)),
                         'tokenizers': lambda: nbytes / 1e6 / timed(lambda: hf_train(docs, vocab_size))}, repeats)
    def enc_ours():
        tok = BPETokenizer.from_dict(ours_json)
        return nbytes / 1e6 / timed(lambda: [tok.encode(d) for d in docs])
    def enc_hf():
        tok = Tokenizer.from_str(hf_json)
        return nbytes / 1e6 / timed(lambda: [tok.encode(d).ids for d in docs])
    def enc_hf_batch():
        tok = Tokenizer.from_str(hf_json)
        return nbytes / 1e6 / timed(lambda: [e.ids for e in tok.encode_batch(docs)])
    encode = interleaved({'codellm': enc_ours, 'tokenizers': enc_hf, 'tokenizers_batch': enc_hf_batch}, repeats)
    n_ours = sum(len(ours.encode(d)) for d in docs)
    n_hf = sum(len(e.ids) for e in hf.encode_batch(docs))
    rt = all(ours.decode(ours.encode(d)) == d for d in docs[:50])
    res = []
    for task, runs in (('train', train), ('encode', encode)):
        for impl, mbs in runs.items():
            res.append(dict(task=task, impl=impl, mb_per_s=median(mbs), mb_per_s_runs=[round(v, 3) for v in mbs]))
    return dict(settings=dict(mb=round(nbytes / 1e6, 3), documents=len(docs), vocab_size=vocab_size, repeats=repeats,
                              hf_pre_tokenizer='ByteLevel (GPT-2 regex)', codellm_pre_tokenizer='GPT-2 style regex, ASCII classes',
                              hf_threads=os.environ.get('RAYON_NUM_THREADS', f'default (all {os.cpu_count()} cores)'), codellm_threads=1,
                              encode='one document per call (tokenizers_batch: encode_batch over the Rust thread pool, hf_threads), fresh tokenizer each repeat'),
                results=res,
                train_ratio=median(paired_ratios(train['codellm'], train['tokenizers'])),
                encode_ratio=median(paired_ratios(encode['codellm'], encode['tokenizers'])),
                encode_ratio_vs_batch=median(paired_ratios(encode['codellm'], encode['tokenizers_batch'])),
                bytes_per_token=dict(codellm=round(nbytes / n_ours, 3), tokenizers=round(nbytes / n_hf, 3)),
                vocab=dict(codellm=ours.vocab_size, tokenizers=hf.get_vocab_size()), codellm_roundtrip=rt)
