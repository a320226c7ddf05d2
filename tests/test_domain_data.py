"Tests for codellm.stages.domain_data: domains, harvesting on a planted tree, template pairs and their held-out split, own-words pairs, templated files, the corpus, its card and sample."
import ast, os, random, re
from pathlib import Path

import pytest

from codellm.core import CodeLLMError
from codellm.stages.domain_data import (DOMAINS, DOMAIN_LANGUAGES, DomainCorpus, DomainFile, DomainPair, apply_marks,
                                        build_domain_corpus, check_domain, corpus_card, domain_tag, domain_templates,
                                        harvest_domain, own_words_pairs, read_text_file, render_template, split_files,
                                        split_templates, template_files, template_pairs, write_domain_sample)

SLOT = re.compile(r'\{\{\w+(?:\.\w+)?(?:\|\w+)?\}\}|\{\{@\w+\}\}')   # a slot or mark left unfilled


def test_check_domain_and_tag():
    assert [check_domain(d) for d in DOMAINS] == list(DOMAINS)
    assert domain_tag('web') == '<|domain:web|>' and domain_tag('data_science') == '<|domain:data_science|>'
    assert check_domain('all', allow_all=True) == 'all'
    with pytest.raises(CodeLLMError) as e: check_domain('gaming')
    msg = str(e.value)
    assert msg == ("ERROR: UNKNOWN DOMAIN 'gaming'! Run: codellm train --stage domain --domain "
                   "<one of: web, data_science, devops, mobile, backend>")
    with pytest.raises(CodeLLMError) as e: check_domain('all')
    assert 'all>' not in str(e.value)
    with pytest.raises(CodeLLMError): domain_tag('gaming')
    with pytest.raises(CodeLLMError) as e: check_domain('Web', allow_all=True)
    assert str(e.value).endswith('backend, all>') and '\n' not in str(e.value)


@pytest.mark.parametrize('domain', DOMAINS)
def test_pairs_in_both_splits(domain):
    for split in ('train', 'heldout'):
        pairs = template_pairs(domain, 40, seed=0, split=split)
        assert len(pairs) == 40
        for p in pairs:
            assert isinstance(p, DomainPair) and p.domain == domain and p.source == 'template'
            assert p.language in DOMAIN_LANGUAGES[domain], p.language
            assert p.request.strip() and p.code.strip() and not SLOT.search(p.request + p.code), p.template
            assert p.template.split(':')[1][0] == ('t' if split == 'train' else 'h')


def test_determinism():
    for d in DOMAINS:
        a, b = template_pairs(d, 30, seed=5), template_pairs(d, 30, seed=5)
        assert [(p.request, p.code, p.template) for p in a] == [(p.request, p.code, p.template) for p in b]
        assert [p.code for p in a] != [p.code for p in template_pairs(d, 30, seed=6)]
    assert [f.text for f in template_files('mobile', 8, seed=2)] == [f.text for f in template_files('mobile', 8, seed=2)]


@pytest.mark.parametrize('domain', DOMAINS)
def test_splits_share_no_wording(domain):
    train, val = template_pairs(domain, 600, seed=0), template_pairs(domain, 200, seed=0, split='heldout')
    assert not {p.request for p in train} & {p.request for p in val}
    assert not {p.template for p in train} & {p.template for p in val}
    ts = domain_templates()[0][domain]
    train_phr = {s for t in ts if not t.heldout for s in t.requests}
    held_phr = {s for t in ts for s in (t.requests if t.heldout else t.heldout_requests)}
    assert train_phr and held_phr and not train_phr & held_phr
    train_ids = {t.id for t in split_templates(domain, 'train')}
    assert any(p.template.split(':')[0] not in train_ids for p in val)        # held-out skeletons are used
    assert not any(t.heldout for t in split_templates(domain, 'train'))


def test_every_template_renders_parseable_code():
    yaml = pytest.importorskip('yaml')
    for ts in domain_templates()[0].values():
        for t in ts:
            splits = ('heldout',) if t.heldout else ('train', 'heldout')
            for split in splits:
                for seed in range(6):
                    req, code, _ = render_template(t, random.Random(seed), split)
                    assert not SLOT.search(req + code), (t.id, split, seed)
                    if t.language == 'python': ast.parse(code)
                    if t.language == 'yaml': list(yaml.safe_load_all(code))


def test_apply_marks_indents_and_inlines():
    code = 'def f(xs{{@arg}}):\n    for x in xs:\n        {{@body}}\n    return 0\n'
    assert apply_marks(code, {}) == 'def f(xs):\n    for x in xs:\n    return 0\n'
    out = apply_marks(code, {'arg': [', k=1'], 'body': ['if x:\n    print(x)\n']})
    assert out == 'def f(xs, k=1):\n    for x in xs:\n        if x:\n            print(x)\n    return 0\n'


@pytest.mark.parametrize('domain', DOMAINS)
def test_own_words(domain):
    own = own_words_pairs(domain)
    assert len(own) >= 10
    phrasings = {s.lower() for t in domain_templates()[0][domain] for s in t.requests + t.heldout_requests}
    for p in own:
        assert p.source == 'own_words' and p.template == '' and p.language in DOMAIN_LANGUAGES[domain]
        assert 5 <= len(p.code.strip().splitlines()) <= 25, p.request
        assert p.request.lower() not in phrasings
        if p.language == 'python': ast.parse(p.code)


def _plant(root: Path):
    (root / 'js').mkdir(parents=True)
    js = ("// Open and close the menu.\nconst menu = document.querySelector('#menu');\n"
          "const toggle = document.querySelector('#toggle');\ntoggle.addEventListener('click', () => {\n"
          "  menu.hidden = !menu.hidden;\n});\n")
    (root / 'js' / 'menu.js').write_text(js)
    (root / 'js' / 'menu_again.js').write_text(js)                                   # exact duplicate
    (root / 'js' / 'bundle.js').write_text('var a=1,b=2,c=3;' * 150 + '\n')          # minified: one long line
    (root / 'js' / 'blob.js').write_bytes(b'const x = 1;\n\x00\x00\x01\x02' * 20)   # binary
    (root / 'js' / 'old.js').write_bytes(("const caf\xe9 = 'latin-1';\n" * 10).encode('latin-1'))   # not UTF-8
    (root / 'js' / 'big.js').write_text('const value = compute(1, 2, 3);\n' * 2000)  # 64 kB: cut at a line end
    (root / 'site.css').write_text('.card {\n  padding: 1rem;\n  border-radius: 8px;\n  background: #fff;\n}\n\n'
                                   '.card h2 {\n  margin: 0 0 0.5rem;\n  font-size: 1.25rem;\n  color: #222;\n}\n')
    (root / 'index.html').write_text('<!DOCTYPE html>\n<html>\n<body>\n  <div class="card">\n'
                                     '    <p>Welcome to a page with enough markup to count as HTML.</p>\n  </div>\n'
                                     '  <section><p>Second section.</p></section>\n</body>\n</html>\n')
    (root / 'ci.yml').write_text('on: [push]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n'
                                 '      - uses: actions/checkout@v4\n      - run: make test\n')
    (root / 'app.service').write_text('[Unit]\nDescription=Demo app\n\n[Service]\nExecStart=/usr/bin/demo --port 8080\n'
                                      'Restart=on-failure\n\n[Install]\nWantedBy=multi-user.target\n')


def test_harvest_on_a_planted_tree(tmp_path):
    _plant(tmp_path)
    web = harvest_domain('web', roots=[tmp_path], max_file_bytes=20_000)
    names = sorted(os.path.relpath(f.path, tmp_path) for f in web)
    menus = [n for n in names if 'menu' in n]
    assert len(menus) == 1                                                           # the duplicate is skipped
    assert [n for n in names if 'menu' not in n] == ['index.html', 'js/big.js', 'site.css']   # minified, binary, latin-1 skipped
    big = next(f for f in web if f.path.endswith('big.js'))
    assert len(big.text.encode()) <= 20_000 and big.text.endswith(';\n')
    assert all(isinstance(f, DomainFile) and f.source == 'harvested' and f.domain == 'web' for f in web)
    assert {f.language for f in web} == {'html', 'css', 'javascript'}
    devops = harvest_domain('devops', roots=[tmp_path])
    assert sorted(f.language for f in devops) == ['systemd', 'yaml']
    assert [f.path for f in harvest_domain('web', roots=[tmp_path])] == [f.path for f in web]      # deterministic
    assert harvest_domain('web', roots=[tmp_path / 'missing']) == [] and harvest_domain('mobile', roots=[tmp_path]) == []
    assert sum(len(f.text.encode()) for f in harvest_domain('web', roots=[tmp_path], max_bytes=3_000)) <= 3_000
    assert read_text_file(tmp_path / 'js' / 'bundle.js')[1] == 'minified'
    assert read_text_file(tmp_path / 'js' / 'blob.js')[1] == 'binary'


def test_split_files_is_stable():
    files = [DomainFile('web', f'/x/{i}.js', 'x', 'javascript', 'harvested') for i in range(400)]
    train, val = split_files(files)
    assert len(train) + len(val) == 400 and 10 < len(val) < 80
    _, val_half = split_files(files[::2])
    assert {f.path for f in val_half} <= {f.path for f in val}


def test_template_files():
    for d in DOMAINS:
        fs = template_files(d, 10, seed=0)
        assert (len(fs) > 0) == (d in ('mobile', 'devops')), d
        for f in fs:
            assert f.source == 'template' and f.language in DOMAIN_LANGUAGES[d] and not SLOT.search(f.text)
    kotlin = [f for f in template_files('mobile', 30, seed=1) if f.language == 'kotlin']
    assert kotlin and all(f.text.startswith('package com.example.') and f.path.endswith('.kt') for f in kotlin)
    train, held = template_files('mobile', 20, seed=0), template_files('mobile', 20, seed=0, split='heldout')
    assert held and not {f.text for f in train} & {f.text for f in held}


def test_corpus_card_and_sample(tmp_path):
    _plant(tmp_path / 'root')
    corpora = [build_domain_corpus(d, n_pairs=20, n_val_pairs=5, n_template_files=6, roots=[tmp_path / 'root'], max_bytes=20_000)
               for d in DOMAINS]
    c = corpora[DOMAINS.index('mobile')]
    assert isinstance(c, DomainCorpus) and len(c.train_pairs) == 20 and len(c.val_pairs) == 5 and len(c.own_words) >= 10
    assert c.train_files and all(f.source == 'template' for f in c.train_files)
    card = corpus_card(corpora)
    assert list(card.columns) == ['domain', 'kind', 'split', 'items', 'bytes', 'languages']
    assert len(card) == 7 * len(DOMAINS)
    row = card[(card.domain == 'web') & (card.kind == 'harvested files')]['items'].sum()
    assert row >= 3
    path = write_domain_sample(corpora[0], tmp_path / 'sample.txt', k=2)
    text = path.read_text()
    assert corpora[0].train_pairs[0].request in text and '[own_words]' in text and '[harvested]' in text
    assert not list(tmp_path.glob('.sample.txt.*'))


def test_sql_templates_are_planned_by_sqlite():
    "SQL without PostgreSQL-only syntax runs through SQLite's planner against the schema template's tables."
    import sqlite3
    postgres_only = re.compile(r'DATE_TRUNC|NOW\(\)|INTERVAL|IS DISTINCT FROM|ADD CONSTRAINT|LAG\(', re.I)
    ts = domain_templates()[0]['backend']
    schema_t = next(t for t in ts if t.id == 'backend/sql_schema')
    planned = 0
    for t in [t for t in ts if t.language == 'sql' and t is not schema_t]:
        for seed in range(20):
            values, r = {}, random.Random(seed)
            schema = render_template(schema_t, r, 'train', values)[1]
            query = render_template(t, r, 'heldout' if t.heldout else 'train', values)[1]
            if postgres_only.search(query): continue
            db = sqlite3.connect(':memory:')
            db.executescript(schema)
            e = values['entity']
            if 'updated_at' in query: db.execute(f"ALTER TABLE {e['many']} ADD COLUMN updated_at TIMESTAMP")
            if 'ON CONFLICT' in query: db.execute(f"CREATE UNIQUE INDEX one_{e['s1']} ON {e['many']} ({e['s1']})")
            for stmt in filter(str.strip, query.split(';')): db.execute('EXPLAIN ' + stmt)
            planned += 1
    assert planned > 10
