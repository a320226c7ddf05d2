"""The two models compared: codellm's `GPT` and Hugging Face's `GPT2LMHeadModel` with the same sizes.

They are not the same architecture, and that is the point: each is what a learner gets by default.
- codellm: RMSNorm, rotary positions, no biases, tied embeddings, `F.scaled_dot_product_attention`.
- GPT-2: LayerNorm, learned positions, biases, tied embeddings, tanh-GELU, attention from `transformers`' default
  implementation (`sdpa` in transformers 5). Dropout is set to 0 to match codellm's pretraining default (GPT-2's 0.1
  would add work that codellm does not do).
"""
import torch
from codellm.model import GPT, GPTConfig, preset_config

VOCAB = 4096   # the language stage's tokenizer size


def codellm_model(size: str, vocab_size: int = VOCAB, seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(preset_config(size, vocab_size=vocab_size, **overrides))


def hf_gpt2(cfg: GPTConfig, seed: int = 0):
    "GPT2LMHeadModel with `cfg`'s n_layer, n_head, n_embd, block size and vocabulary."
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel
    transformers.logging.set_verbosity_error()
    torch.manual_seed(seed)
    hf_cfg = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
                        n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = GPT2LMHeadModel(hf_cfg)
    model.generation_config.eos_token_id = None        # generate exactly max_new_tokens, as codellm does without stop ids
    model.generation_config.pad_token_id = 0
    return model


def attn_implementation(model) -> str: return getattr(model.config, '_attn_implementation', None) or 'unknown'


def n_params(model) -> int: return sum(p.numel() for p in model.parameters())


def lm_loss(model, kind: str, x, y):
    "Next-token loss: codellm takes targets `y` (x shifted by one); transformers shifts `labels=x` itself."
    return model(x, y)[1] if kind == 'codellm' else model(input_ids=x, labels=x).loss
