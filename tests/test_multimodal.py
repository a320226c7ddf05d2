"""Tests for stage 5 (`codellm.stages.multimodal`, `codellm.multimodal.*`) that need no trained model: a random micro model
stands in for the stage-4 checkpoint, and every command of the stage runs on it through the CLI (`prepare multimodal`,
`train --stage multimodal`, `evaluate`, `generate --image`), with the one-line errors of bad input."""
import json, random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from codellm.checkpoint import save_checkpoint, load_checkpoint, text_model
from codellm.chat_format import CHAT_TEMPLATE
from codellm.model import GPT, tiny_test_config
from codellm.stage import load_stages
from codellm.tokenizer import BPETokenizer
from codellm.multimodal.images import (make_scenes, program, draw, colour_iou, render_program, load_image, decode_image,
                                       compositions, HELD_OUT, SCENES, KINDS, right_objects, objects_of)
from conftest import codellm, one_line_error


def micro_checkpoint(path: Path, stage: str = 'rlhf', seed: int = 0) -> BPETokenizer:
    "A random micro GPT with a tokenizer trained on programs, saved as a text checkpoint of `stage`."
    tok = BPETokenizer.train([program(s) for s in make_scenes(30, seed=seed)['train']], vocab_size=420)
    torch.manual_seed(seed)
    save_checkpoint(path, GPT(tiny_test_config(vocab_size=tok.vocab_size, block_size=64)), tok, stage, CHAT_TEMPLATE)
    return tok


@pytest.fixture(scope='module')
def stage5(tmp_path_factory):
    "Data and models folders with a micro stage-4 checkpoint, 30 prepared pictures and a (barely) trained stage-5 model."
    d, m = tmp_path_factory.mktemp('data'), tmp_path_factory.mktemp('models')
    micro_checkpoint(m / 'rlhf_model_best.pth')
    dirs = ['--data-dir', d, '--models-dir', m]
    codellm('prepare', 'multimodal', '--num-images', 30, *dirs, check=True)
    codellm('train', '--stage', 'multimodal', *dirs, '--steps-per-epoch', 2, '--eval-every', 2, '--batch-size', 2,
            '--align-steps', 1, '--vision-layers', 1, '--vision-width', 16, '--no-progress', check=True)
    return d, m, dirs


def test_stage_declared():
    st = load_stages()
    assert list(st).index('rlhf') < list(st).index('multimodal')
    assert st['multimodal'].init_from == 'rlhf'


def test_splits_hold_out_compositions():
    sc = make_scenes(90, seed=3)
    assert {k: len(v) for k, v in sc.items()} == {'train': 72, 'val': 9, 'compositions': 9}
    for split, scenes in sc.items():
        for s in scenes: assert bool(compositions(s) & HELD_OUT[s['kind']]) == (split == 'compositions')
    assert [s['kind'] for s in sc['train'][:3]] == list(KINDS)


def test_colour_iou_scores_what_it_should():
    s = SCENES['shapes'](random.Random(7)); img = draw(s)
    assert colour_iou(img, img) == 1.0
    assert colour_iou(img, Image.new('RGB', (128, 128), 'white')) == 0.0
    other = dict(kind='shapes', objects=[{**o, 'colour': 'blue' if o['colour'] != 'blue' else 'red'} for o in s['objects']])
    assert colour_iou(img, draw(other)) == 0.0
    assert colour_iou(img, img.resize((64, 64), Image.NEAREST)) > 0.9          # another size is resized first


@pytest.mark.parametrize('kind', KINDS)
def test_programs_rerender_to_their_pictures(kind):
    s = SCENES[kind](random.Random(11))
    r = render_program(program(s))
    assert r.image is not None, r.error
    assert colour_iou(draw(s), r.image) > 0.99
    assert right_objects(program(s), s) and objects_of('not python (', kind) is None


@pytest.mark.parametrize('code', ['while True: pass', 'raise SystemExit(3)', 'print(1)', "open('image.png', 'w').write('x')",
                                  "import os; os.symlink('/etc/passwd', 'image.png')"])
def test_bad_programs_score_zero_without_hanging(code):
    r = render_program(code, timeout=2)
    assert r.image is None and r.error


def test_load_image_conversions_and_refusals(tmp_path):
    Image.new('RGBA', (40, 30), (0, 0, 0, 0)).save(tmp_path / 'a.png')
    Image.new('L', (300, 300), 10).save(tmp_path / 'g.jpg')
    (tmp_path / 'x.png').write_bytes(b'\x89PNG not really')
    assert load_image(tmp_path / 'a.png').getpixel((5, 5)) == (255, 255, 255)
    assert load_image(tmp_path / 'g.jpg', 64).size == (64, 64)
    from codellm.core import CodeLLMError
    with pytest.raises(CodeLLMError, match='NOT AN IMAGE'): load_image(tmp_path / 'x.png')
    with pytest.raises(CodeLLMError, match='NOT FOUND'): load_image(tmp_path / 'none.png')
    import io
    bomb = io.BytesIO(); Image.new('1', (9000, 9000)).save(bomb, 'PNG')
    with pytest.raises(CodeLLMError, match='MORE THAN'): decode_image(bomb.getvalue())


def test_prepare_writes_the_guides_files(stage5):
    d, _, _ = stage5
    names = {f.name for f in Path(d).iterdir()}
    assert {'multimodal_train_tokens.npy', 'multimodal_val_tokens.npy', 'multimodal_compositions_tokens.npy',
            'multimodal_meta.json', 'images'} <= names
    meta = json.loads((Path(d) / 'multimodal_meta.json').read_text())
    assert meta['counts'] == {'train': 24, 'val': 3, 'compositions': 3}
    rec = meta['images']['val'][0]
    assert {'file', 'kind', 'objects', 'code'} <= set(rec) and (Path(d) / rec['file']).is_file()
    assert Image.open(Path(d) / rec['file']).size == (128, 128)
    assert not [f for f in Path(d).iterdir() if f.name.startswith('.')]         # no temporary files left


def test_checkpoint_is_one_vlm_file(stage5):
    _, m, _ = stage5
    raw = torch.load(Path(m) / 'multimodal_model_best.pth', weights_only=True)
    assert raw['kind'] == 'vlm' and set(raw['config']) == {'lm', 'vision', 'image_token_id'}
    ck = load_checkpoint(Path(m) / 'multimodal_model_best.pth')
    assert {'lm', 'vision', 'projector'} <= {n for n, _ in ck.model.named_children()}
    assert isinstance(text_model(ck.model), GPT)                 # what a later stage trains: the vision part dropped


def test_generate_image_and_text(stage5, tmp_path):
    d, m, _ = stage5
    ck = Path(m) / 'multimodal_model_best.pth'
    Image.new('RGBA', (500, 300), (255, 0, 0, 128)).save(tmp_path / 'odd.png')
    for pic in (Path(d) / 'images' / 'val_00000.png', tmp_path / 'odd.png'):
        r = codellm('generate', '--checkpoint', ck, '--image', pic, '--max-new-tokens', 8)
        assert r.returncode == 0, r.stderr
    r = codellm('generate', '--checkpoint', ck, '--prompt', 'hello', '--max-new-tokens', 4)   # still a text model
    assert r.returncode == 0, r.stderr


def test_evaluate_row(stage5):
    _, _, dirs = stage5
    r = codellm('evaluate', '--stage', 'multimodal', *dirs, '--limit', 3, '--max-new-tokens', 8, check=True)
    row = json.loads(r.stdout)
    assert row['stage'] == 'multimodal' and row['better'] == 'higher'
    for k in ('val_iou', 'val_blind_iou', 'val_nn_iou', 'val_runs', 'comp_iou', 'own_words_iou'): assert k in row
    assert row['val_nn_iou'] > 0.0                                  # nearest neighbour draws something real


def test_bad_input_is_one_line(stage5, tmp_path):
    d, m, dirs = stage5
    text_ck = tmp_path / 'code_model_best.pth'; micro_checkpoint(text_ck, 'code')
    one_line_error(codellm('generate', '--checkpoint', text_ck, '--image', Path(d) / 'images' / 'val_00000.png'), 'TEXT MODEL')
    one_line_error(codellm('generate', '--checkpoint', Path(m) / 'multimodal_model_best.pth', '--image', tmp_path / 'none.png'), 'NOT FOUND')
    (tmp_path / 'notes.png').write_text('hello')
    one_line_error(codellm('generate', '--checkpoint', Path(m) / 'multimodal_model_best.pth', '--image', tmp_path / 'notes.png'), 'NOT AN IMAGE')
    one_line_error(codellm('evaluate', '--stage', 'multimodal', '--checkpoint', text_ck, *dirs), 'TEXT MODEL')
    one_line_error(codellm('prepare', 'multimodal', '--num-images', 2, '--data-dir', tmp_path), 'TOO FEW')
    one_line_error(codellm('prepare', 'multimodal', '--image-size', 100, '--data-dir', tmp_path), 'MULTIPLE OF THE PATCH')
    one_line_error(codellm('train', '--stage', 'multimodal', '--data-dir', tmp_path / 'empty', '--models-dir', m), 'MULTIMODAL DATA NOT FOUND')
