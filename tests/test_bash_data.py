"Tests for codellm.stages.bash_data (templates, splits, harvesting on a fixture tree, the fallback, the sample file) and the script checks of codellm.stages.bash_checks."
import os, warnings
from dataclasses import fields
from importlib import resources

import pytest

from codellm.stages.bash_data import (EVERYDAY, POOLS, TASK_TEMPLATES, Pair, TaskTemplate, count_distinct_tasks, harvest,
                                      harvest_or_fallback, harvest_scripts, heldout_tasks, is_shell_shebang, load_everyday,
                                      load_pools, load_task_templates, make_fixture_tree, make_instruction_pairs, read_resource,
                                      write_sample)
from codellm.stages.bash_checks import (bash_check_many, check_script, check_scripts, missing_commands, script_commands,
                                        shellcheck_available, uses_expected_commands)
from codellm.core import CodeLLMError

SEEDS = (0, 1, 2, 3)


def _one_per_template(split):
    return [make_instruction_pairs(1, seed, split, templates=[t])[0] for seed in SEEDS for t in TASK_TEMPLATES]


@pytest.mark.parametrize('split', ['train', 'heldout'])
def test_every_template_gives_valid_nontrivial_bash(split):
    pairs = _one_per_template(split)
    assert len(pairs) == len(SEEDS) * len(TASK_TEMPLATES)
    for p, r in zip(pairs, check_scripts([p.script for p in pairs], shellcheck=False)):
        assert r['bash_ok'], (p.template_id, r['bash_error'])
        assert not r['trivial'], p.template_id
        assert uses_expected_commands(p.script, p), (p.template_id, missing_commands(p.script, p))
        assert '{{' not in p.task and '{{' not in p.script, p.template_id      # every slot was filled
        assert p.script.startswith('#!/usr/bin/env bash\n') and p.split == split


@pytest.mark.skipif(not shellcheck_available(), reason='shellcheck is not installed')
def test_every_template_is_shellcheck_clean():
    pairs = _one_per_template('train')[:len(TASK_TEMPLATES)] + _one_per_template('heldout')[:len(TASK_TEMPLATES)]
    findings = {(p.template_id, tuple(r['shellcheck'])) for p, r in zip(pairs, check_scripts([p.script for p in pairs]))
                if r['shellcheck']}
    assert findings == set()


def test_templates_are_well_formed():
    assert len(TASK_TEMPLATES) >= 40
    assert len({t.id for t in TASK_TEMPLATES}) == len(TASK_TEMPLATES)
    assert len({t.topic for t in TASK_TEMPLATES}) >= 7
    for t in TASK_TEMPLATES:
        assert len(t.tasks) >= 3 and len(set(t.tasks)) == len(t.tasks), t.id
        assert t.commands, t.id
        assert all(pool in POOLS for pool in t.slots.values()), t.id


def test_template_data_is_package_data():
    "TASK_TEMPLATES, POOLS and EVERYDAY are read from codellm/resources/*.toml, with the types the code expects."
    folder = resources.files('codellm') / 'resources'
    assert (folder / 'bash_tasks.toml').is_file() and (folder / 'bash_pools.toml').is_file()
    raw = read_resource('bash_tasks.toml')['template']
    assert [list(t) for t in raw] == [[f.name for f in fields(TaskTemplate)]] * len(raw)    # exactly the fields, in order
    assert load_task_templates() == TASK_TEMPLATES and [t.id for t in TASK_TEMPLATES] == [t['id'] for t in raw]
    assert all(isinstance(t.tasks, tuple) and isinstance(t.commands, tuple) and isinstance(t.slots, dict) for t in TASK_TEMPLATES)
    assert all(t.script.endswith('\n') and not t.script.startswith('\n') for t in TASK_TEMPLATES)
    assert load_pools() == POOLS and all(isinstance(v, tuple) and len(v) == 2 for v in POOLS.values())
    assert {type(x) for tr, ho in POOLS.values() for x in tr + ho} == {str, int, dict}
    assert load_everyday() == EVERYDAY and all(isinstance(r, tuple) and len(r) == 2 for r in EVERYDAY)
    assert {tid for _, tid in EVERYDAY} <= {t.id for t in TASK_TEMPLATES}


def test_train_and_heldout_requests_never_overlap():
    train = {p.task for p in make_instruction_pairs(5000, seed=0)}
    held = {p.task for p in heldout_tasks(count_distinct_tasks('heldout'), seed=0)}
    assert len(train) > 2000 and len(held) > 200
    assert train.isdisjoint(held)
    # by construction: no paraphrase and no pool value is on both sides
    assert {ph for t in TASK_TEMPLATES for ph in t.tasks[:-1]}.isdisjoint({t.tasks[-1] for t in TASK_TEMPLATES})
    for name, (tr, ho) in POOLS.items():
        assert not [v for v in ho if v in tr], name


def test_heldout_uses_heldout_values_only():
    held_values = {str(v) for _, ho in POOLS.values() for v in ho if not isinstance(v, dict)}
    for p in heldout_tasks(100, seed=3):
        t = next(t for t in TASK_TEMPLATES if t.id == p.template_id)
        scalar_slots = [s for s, pool in t.slots.items() if not isinstance(POOLS[pool][1][0], dict)]
        if scalar_slots: assert any(v in p.script for v in held_values), p.task


def test_determinism_by_seed():
    a = make_instruction_pairs(40, seed=11)
    b = make_instruction_pairs(40, seed=11)
    c = make_instruction_pairs(40, seed=12)
    assert [(p.task, p.script) for p in a] == [(p.task, p.script) for p in b]
    assert [p.task for p in a] != [p.task for p in c]
    assert [p.task for p in heldout_tasks(30, 5)] == [p.task for p in heldout_tasks(30, 5)]
    assert len({p.task for p in heldout_tasks(100, 0)}) == 100                  # no repeats in a sample of 100


def test_templates_are_balanced():
    pairs = make_instruction_pairs(3 * len(TASK_TEMPLATES), seed=0)
    counts = {}
    for p in pairs: counts[p.template_id] = counts.get(p.template_id, 0) + 1
    assert set(counts) == {t.id for t in TASK_TEMPLATES} and max(counts.values()) - min(counts.values()) <= 2


def test_unknown_split_is_an_error():
    with pytest.raises(CodeLLMError, match='UNKNOWN SPLIT'):
        make_instruction_pairs(2, split='test')


def test_check_script_flags_syntax_errors_and_trivial_scripts():
    bad = check_script('#!/bin/bash\nif [ -f x ]; then\n  echo yes\n', shellcheck=False)
    assert bad['bash_ok'] is False and 'syntax error' in bad['bash_error']
    assert check_script('#!/bin/bash\nset -e\necho "Archiving /srv/data"\nexit 0\n')['trivial'] is True
    assert check_script('')['trivial'] is True
    real = check_script('#!/bin/bash\nfind /var/log -name "*.txt" -exec wc -l {} +\n')
    assert real['bash_ok'] is True and real['bash_error'] is None and real['trivial'] is False
    assert real['commands'] == ['find', 'wc'] and real['n_commands'] == 2
    if shellcheck_available():
        assert check_script('#!/bin/bash\necho $1\n')['shellcheck'] == ['SC2086']
        assert real['shellcheck'] == []
    else:
        assert real['shellcheck'] is None


def test_script_commands_ignores_comments_strings_and_heredocs():
    sc = lambda t: script_commands(t)['commands']
    assert sc('# find and wc\necho "grep sort"\ncat <<EOF\nrm -rf /\nEOF\n') == ['cat']
    assert sc('x=$(find . | wc -l); LC_ALL=C sort f > out') == ['find', 'sort', 'wc']
    assert sc('usage() { echo hi; }\ncase "$1" in\n  -h|--help) usage ;;\n  *) tar -xf "$1" ;;\nesac') == ['tar']
    assert sc('find . -print0 | xargs -0 -r md5sum; find . -exec gzip {} +') == ['find', 'gzip', 'md5sum', 'xargs']
    assert sc('while read -r l; do :; done < <(ls -1); [[ $(id -u) -eq 0 ]] && echo root') == ['id', 'ls']
    assert uses_expected_commands('cut -d, -f1 f | sort', ['cut|awk', 'sort'])
    assert missing_commands('echo "use find and wc"', Pair('t', 's', 'x', ('find', 'wc'))) == ['find', 'wc']


def test_shebang_recognition():
    for head in (b'#!/bin/sh\n', b'#! /bin/sh -e\n', b'#!/usr/bin/env bash\n', b'#!/usr/local/bin/bash\n', b'#!/bin/bash'):
        assert is_shell_shebang(head), head
    for head in (b'#!/usr/bin/perl\n', b'#!/bin/zsh\n', b'#!/bin/shx\n', b'echo hi\n', b'#!/usr/bin/env python3\n'):
        assert not is_shell_shebang(head), head


def test_harvest_fixture_tree_keeps_exactly_the_good_scripts(tmp_path):
    expected = make_fixture_tree(tmp_path)
    assert sorted(expected) == ['good.sh', 'runme', 'sub/deeper/nested.bash']
    scripts, st = harvest([tmp_path])
    assert sorted(os.path.relpath(s.path, tmp_path) for s in scripts) == sorted(expected)
    assert (st.too_small, st.too_big, st.binary, st.not_utf8) == (1, 1, 1, 1)            # tiny, huge, installer, latin1
    assert (st.duplicates, st.near_duplicates, st.bash_failed, st.kept) == (1, 1, 1, 3)   # copy, re-indented copy, bad
    assert st.skipped_ext == 2                                                            # helper.py, tool.pl
    assert st.shebang == st.too_small + st.too_big + st.binary + st.not_utf8 + st.duplicates + st.near_duplicates \
        + st.bash_failed + st.kept
    assert st.bytes == sum(len(s.text.encode()) for s in scripts)
    assert [s.path for s in harvest_scripts([tmp_path])] == [s.path for s in scripts]    # deterministic order
    # the size bounds are parameters: with a larger max, huge.sh is kept too
    assert 'huge.sh' in {os.path.basename(s.path) for s in harvest_scripts([tmp_path], max_bytes=100_000)}
    assert len(harvest_scripts([tmp_path], limit=1)) == 1


def test_harvest_missing_root_is_empty(tmp_path):
    scripts, st = harvest([tmp_path / 'does-not-exist'])
    assert scripts == [] and st.scanned == 0


def test_fallback_warns_and_names_the_cause(tmp_path):
    make_fixture_tree(tmp_path)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        scripts, note = harvest_or_fallback([tmp_path])
    assert scripts == [] and len(w) == 1
    assert 'only 3 shell scripts' in note and 'instruction pairs alone' in note
    scripts, note = harvest_or_fallback([tmp_path], min_scripts=3)
    assert len(scripts) == 3 and note.startswith('harvested 3')


def test_bash_check_many_matches_serial():
    texts = ['echo ok\n', 'if then\n', 'for f in *; do wc -l "$f"; done\n'] * 5
    assert [ok for ok, _ in bash_check_many(texts, workers=4)] == [True, False, True] * 5


def test_write_sample(tmp_path):
    pairs = make_instruction_pairs(5, seed=0)
    scripts = harvest_scripts([tmp_path]) if make_fixture_tree(tmp_path) else []
    path = write_sample(pairs, scripts, tmp_path / 'out' / 'code_sample.txt', n_pairs=3, n_scripts=2, max_lines=3)
    text = path.read_text()
    assert text.count('==== pair') == 3 and text.count('==== harvested script') == 2
    assert pairs[0].task in text and pairs[2].script.splitlines()[1] in text and pairs[3].task not in text
    empty = write_sample(pairs, [], tmp_path / 'empty.txt').read_text()
    assert 'instruction pairs alone' in empty
