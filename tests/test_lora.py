"""LoRA adapters (`codellm.lora`) through the public API: a fresh adapter changes nothing, merge/unmerge/strip keep the
outputs, only adapters train (the base stays bit-identical), the rank and targets are checked, MoE experts are adapted,
and the adapter file (float16, fingerprinted base) is loaded strictly and refused on the wrong base.

Nothing here depends on timing or luck: every model and batch has a fixed seed."""
import copy

import pytest
import torch
import torch.nn as nn

from codellm.checkpoint import load_checkpoint, save_checkpoint
from codellm.core import CodeLLMError
from codellm.lora import (ADAPTER_FORMAT, LORA_TARGETS, LoRALinear, add_lora, apply_adapter, check_lora_rank, count_parameters,
                          load_adapter, load_lora_parameters, lora_parameters, merge_lora, save_adapter, strip_lora, unmerge_lora,
                          weights_fingerprint)
from codellm.model import GPT, tiny_test_config
from codellm.tokenizer import BPETokenizer


def model(seed=0, **kw):
    torch.manual_seed(seed)
    return GPT(tiny_test_config(**kw)).eval()


def batch(seed=1, vocab=64):
    return torch.randint(0, vocab, (2, 12), generator=torch.Generator().manual_seed(seed))


def randomise(m, seed=2):
    "Give every adapter's B (and A) random values: a fresh B is zero and would prove nothing."
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in lora_parameters(m).values(): t.copy_(torch.randn(t.shape, generator=g) * 0.05)


def one_line(e: pytest.ExceptionInfo, *parts):
    msg = str(e.value)
    assert msg.startswith('ERROR:') and '\n' not in msg and 'Run:' in msg, msg
    for p in parts: assert p in msg, msg


def test_lora_linear_matches_the_equation_and_merges():
    torch.manual_seed(0)
    lin = nn.Linear(16, 24, bias=True)
    lora = LoRALinear(lin, rank=4, alpha=8)
    assert lora.A.shape == (4, 16) and lora.B.shape == (24, 4) and lora.scale == 2.0 and not lora.B.any()
    x = torch.randn(3, 16)
    assert torch.equal(lora(x), lin(x))                                   # B = 0: no change
    with torch.no_grad(): lora.B.normal_()
    want = x @ (lin.weight + 2.0 * lora.B @ lora.A).T + lin.bias
    torch.testing.assert_close(lora(x), want, rtol=1e-5, atol=1e-5)
    w0 = lin.weight.clone()
    lora.merge(); lora.merge()                                            # the second merge is a no-op
    assert lora.merged
    torch.testing.assert_close(lora(x), want, rtol=1e-5, atol=1e-5)
    lora.unmerge(); lora.unmerge()                                        # the second unmerge is a no-op
    assert not lora.merged
    torch.testing.assert_close(lin.weight, w0, rtol=0, atol=1e-6)
    assert [n for n, p in lora.named_parameters() if p.requires_grad] == ['A', 'B']


def test_fresh_adapters_change_no_logit_and_freeze_the_rest():
    m, idx = model(), batch()
    with torch.no_grad(): before, _ = m(idx)
    total = count_parameters(m)['total']
    names = add_lora(m, rank=4, alpha=8)
    assert names == [f'blocks.{i}.{t}' for i in range(2) for t in LORA_TARGETS]
    with torch.no_grad(): after, _ = m(idx)
    assert torch.equal(before, after)
    c = count_parameters(m)
    per_block = 4 * ((16 + 48) + (16 + 16) + (16 + 64) + (64 + 16))
    assert c['trainable'] == 2 * per_block == sum(t.numel() for t in lora_parameters(m).values())
    assert c['total'] == total + c['trainable'] and c['share'] == c['trainable'] / c['total']
    assert sorted(n for n, p in m.named_parameters() if p.requires_grad) == sorted(lora_parameters(m))
    assert not isinstance(m.lm_head, LoRALinear) and m.lm_head.weight is m.wte.weight   # tied head: never adapted
    with pytest.raises(CodeLLMError) as e: add_lora(m)
    one_line(e, 'ALREADY HAS 8 LORA ADAPTERS')


def test_targets_rank_and_moe_experts():
    m = model()
    assert check_lora_rank(16, m) == 16
    for bad in (0, 17, -1, 2.0, True):
        with pytest.raises(CodeLLMError) as e: check_lora_rank(bad, m)
        one_line(e, '--lora-rank MUST BE BETWEEN 1 AND 16', f'NOT {bad}')
    with pytest.raises(CodeLLMError) as e: add_lora(model(), targets=('mlp.fc', 'mlp.fcc'))
    one_line(e, "'mlp.fcc'")
    assert add_lora(model(), targets=('attn.proj',)) == ['blocks.0.attn.proj', 'blocks.1.attn.proj']
    moe = model(architecture='moe')
    names = add_lora(moe, rank=2, targets=('mlp.fc', 'mlp.proj'))
    assert len(names) == 2 * moe.config.n_experts * 2 and all('.experts.' in n for n in names)
    idx = batch()
    randomise(moe)
    with torch.no_grad(): unmerged, _ = moe(idx)
    with torch.no_grad(): merged, _ = merge_lora(moe)(idx)
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)


def test_merge_unmerge_and_strip_keep_the_outputs():
    m, idx = model(), batch()
    plain = [n for n, _ in m.named_parameters()]
    base = {k: v.clone() for k, v in m.state_dict().items()}
    add_lora(m, rank=4)
    randomise(m)
    with torch.no_grad():
        unmerged, _ = m(idx)
        merged, _ = merge_lora(m)(idx)
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)
    unmerge_lora(m)
    for name in ('blocks.0.attn.qkv', 'blocks.1.mlp.proj'):
        torch.testing.assert_close(m.get_submodule(name).base.weight, base[f'{name}.weight'], rtol=0, atol=1e-6)
    stripped = strip_lora(copy.deepcopy(m))
    assert not any(isinstance(x, LoRALinear) for x in stripped.modules())
    assert [n for n, _ in stripped.named_parameters()] == plain and all(p.requires_grad for p in stripped.parameters())
    with torch.no_grad(): out, _ = stripped(idx)
    torch.testing.assert_close(out, unmerged, rtol=1e-4, atol=1e-4)


def test_training_changes_only_the_adapters():
    m = model()
    m.train()
    base = {k: v.clone() for k, v in m.state_dict().items()}
    fp = weights_fingerprint(m)
    add_lora(m, rank=4, alpha=8)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=3e-2)
    idx = batch()
    losses = []
    for _ in range(40):
        _, loss = m(idx[:, :-1].contiguous(), idx[:, 1:].contiguous())
        opt.zero_grad(); loss.backward(); opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1     # a small drop: a fresh model's frozen tied head (std 0.02) keeps its logits small
    assert weights_fingerprint(m) == fp                                  # A and B left out: the base is still the base
    stripped_base = strip_lora(copy.deepcopy(unmerge_lora(m)))
    assert any(not torch.equal(v, base[k]) for k, v in stripped_base.state_dict().items())   # merged in, the update shows
    for name, lin in ((n, x.base) for n, x in m.named_modules() if isinstance(x, LoRALinear)):
        assert torch.equal(lin.weight, base[f'{name}.weight'])           # bit-identical base weights
    for k in ('wte.weight', 'norm_f.weight', 'blocks.0.norm1.weight'):
        assert torch.equal(m.state_dict()[k], base[k])


def test_fingerprint_names_exact_weights():
    m = model()
    fp = weights_fingerprint(m)
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert weights_fingerprint(copy.deepcopy(m)) == fp == weights_fingerprint(model())   # same seed, same weights
    assert weights_fingerprint(model(seed=1)) != fp
    nudged = copy.deepcopy(m)
    with torch.no_grad(): nudged.blocks[1].attn.proj.weight[0, 0] += 1e-7
    assert weights_fingerprint(nudged) != fp
    assert weights_fingerprint(copy.deepcopy(m).bfloat16()) != fp
    add_lora(m)
    merge_lora(m)
    with pytest.raises(CodeLLMError) as e: weights_fingerprint(m)
    one_line(e, 'MERGED')


def test_load_lora_parameters_is_strict():
    src = model(); add_lora(src, rank=4); randomise(src)
    dst = model(); add_lora(dst, rank=4)
    load_lora_parameters(dst, {k: v.half() for k, v in lora_parameters(src).items()})
    for k, v in lora_parameters(dst).items():
        assert v.dtype == torch.float32
        torch.testing.assert_close(v, lora_parameters(src)[k], rtol=1e-3, atol=1e-4)
    weights = lora_parameters(src)
    with pytest.raises(CodeLLMError) as e: load_lora_parameters(dst, {k: v for k, v in weights.items() if 'mlp.fc' not in k})
    one_line(e, '4 missing')
    with pytest.raises(CodeLLMError) as e: load_lora_parameters(dst, {**weights, 'blocks.9.attn.qkv.A': weights['blocks.0.attn.qkv.A']})
    one_line(e, '1 unexpected', 'blocks.9.attn.qkv.A')
    rank2 = model(); add_lora(rank2, rank=2)
    with pytest.raises(CodeLLMError) as e: load_lora_parameters(rank2, weights)
    one_line(e, 'HAS SHAPE (4, 16)', "THE MODEL'S IS (2, 16)")
    with pytest.raises(CodeLLMError) as e: load_lora_parameters(model(), weights)
    one_line(e, 'NO LORA ADAPTERS')


def test_adapter_file_round_trip_and_refusals(tmp_path):
    base = model()
    fp = weights_fingerprint(base)
    trained = copy.deepcopy(base); add_lora(trained, rank=4, alpha=8); randomise(trained)
    path = save_adapter(tmp_path / 'domain_web_lora.pth', trained, fp, 'models/code_model_best.pth', rank=4, alpha=8,
                        targets=LORA_TARGETS, meta={'domain': 'web'})
    raw = torch.load(path, weights_only=True)
    assert raw['format'] == ADAPTER_FORMAT == 'codellm-lora-1' and raw['meta'] == {'domain': 'web'}
    assert all(v.dtype == torch.float16 for v in raw['weights'].values()) and sorted(raw['weights']) == sorted(lora_parameters(trained))
    full = save_checkpoint(tmp_path / 'web_model_best.pth', strip_lora(copy.deepcopy(trained)), BPETokenizer([]), stage='web')
    assert path.stat().st_size * 3 < full.stat().st_size

    adapter = load_adapter(path)
    assert adapter['path'] == str(path) and adapter['rank'] == 4 and adapter['alpha'] == 8.0 and adapter['base_fingerprint'] == fp
    idx = batch()
    with torch.no_grad():
        want, _ = trained(idx)
        got, _ = apply_adapter(copy.deepcopy(base), adapter, 'models/code_model_best.pth')(idx)
        again, _ = load_checkpoint(full).model.eval()(idx)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-2)                # float16 storage: within a small tolerance
    torch.testing.assert_close(again, want, rtol=1e-4, atol=1e-4)           # the stripped full checkpoint loads as a plain GPT
    unmerged = apply_adapter(copy.deepcopy(base), adapter, merge=False)
    assert all(not x.merged for x in unmerged.modules() if isinstance(x, LoRALinear))

    other = model(seed=5)
    with pytest.raises(CodeLLMError) as e: apply_adapter(other, adapter, 'models/multimodal_model_best.pth')
    one_line(e, f'BELONGS TO THE BASE models/code_model_best.pth (weights {fp})', f'NOT TO models/multimodal_model_best.pth (weights {weights_fingerprint(other)})',
             f'--checkpoint models/code_model_best.pth --adapter {path}')
    assert not any(isinstance(x, LoRALinear) for x in other.modules())     # refused before anything changed
    bad = copy.deepcopy(base)
    with pytest.raises(CodeLLMError): apply_adapter(bad, {**adapter, 'rank': 2})   # weights of rank 4 do not fit rank-2 adapters
    assert not any(isinstance(x, LoRALinear) for x in bad.modules()) and weights_fingerprint(bad) == fp   # rolled back

    with pytest.raises(CodeLLMError) as e: save_adapter(tmp_path / 'x_lora.pth', trained, fp, 'b', rank=8, alpha=8, targets=LORA_TARGETS)
    one_line(e, 'NOT rank=8')
    with pytest.raises(CodeLLMError) as e: save_adapter(tmp_path / 'x_lora.pth', trained, fp, 'b', rank=4, alpha=8, targets=('attn.qkv',))
    one_line(e, 'NOT rank=4')


def test_load_adapter_errors(tmp_path):
    with pytest.raises(CodeLLMError) as e: load_adapter(tmp_path / 'domain_devops_lora.pth')
    one_line(e, 'NOT FOUND', 'codellm train --stage domain --domain devops --lora')
    damaged = tmp_path / 'domain_web_lora.pth'
    damaged.write_bytes(b'PK\x03\x04 not really a zip file')
    with pytest.raises(CodeLLMError) as e: load_adapter(damaged)
    one_line(e, 'CORRUPTED OR TRUNCATED', '--domain web --lora')
    full = save_checkpoint(tmp_path / 'code_model_best.pth', model(), BPETokenizer([]), stage='code')
    with pytest.raises(CodeLLMError) as e: load_adapter(full)
    one_line(e, 'IS A FULL CHECKPOINT')
    other = tmp_path / 'other.pth'
    torch.save({'format': 'something-else'}, other)
    with pytest.raises(CodeLLMError) as e: load_adapter(other)
    one_line(e, 'IS NOT A CODELLM LORA ADAPTER')
    broken = tmp_path / 'broken_lora.pth'
    torch.save({'format': ADAPTER_FORMAT, 'weights': {}}, broken)
    with pytest.raises(CodeLLMError) as e: load_adapter(broken, fix='codellm train --stage domain --domain mobile --lora')
    one_line(e, 'CORRUPTED (fields missing', '--domain mobile')
