"""Stage 7's objectives (`codellm.agents.objectives`): the grammar and its held-out split, plausible mistakes, hidden tests
that pass on every reference (run in the sandbox) and fail on every mistake, the wording of the three families and of the
hand-written set, fix objectives that start failing, and the trained flags of the scripted expert.

Nothing here depends on timing or luck: every draw has a fixed seed."""
import ast, random, re

import pytest

from codellm.agents.objectives import (FAMILIES, FUNCTIONS, HELDOUT_FUNCTIONS, INT_AGGS, INT_PREDS, CHAR_AGGS, CHAR_PREDS, WORDING,
                                       empty_case, functions, heldout_objectives, hidden_tests, make_objective, mistakes,
                                       own_words_objectives, reference, scripted_actions)
from codellm.agents.workspace import run_test_source

pytestmark = pytest.mark.filterwarnings('ignore:codellm.tools.sandbox:RuntimeWarning')


def passes(r: dict) -> bool: return 'error' not in r and not r.get('failed') and not r.get('errors') and r.get('passed', 0) > 0


def cases_of(test_file: str) -> list[tuple[str, object]]:
    "(call, value) of every `assert call == value` line of a test file we generated."
    return [(m.group(1), ast.literal_eval(m.group(2))) for m in re.finditer(r'^\s*assert (.*) == (.*)$', test_file, re.M)]


def fails_on(spec, body, cases) -> bool:
    "Whether some case fails (or raises) with `body`: our own swapped reference code, run here."
    ns = {}
    exec(spec.source(body), ns)
    for c, v in cases:
        try:
            if eval(c, ns) != v: return True
        except Exception: return True
    return False


def five_grams(text: str) -> set:
    words = re.findall(r"[a-z0-9_']+", re.sub(r'\{\w+\}', ' ', text.lower()))
    return {tuple(words[i:i + 5]) for i in range(len(words) - 4)}


# --- the grammar -------------------------------------------------------------------------------------------------------

def test_counts_and_disjoint_splits():
    train, held = functions('train'), functions('heldout')
    assert len(FUNCTIONS) == len(INT_AGGS) * len(INT_PREDS) + len(CHAR_AGGS) * len(CHAR_PREDS) == 111
    assert (len(train), len(held)) == (87, 24)
    assert HELDOUT_FUNCTIONS <= set(FUNCTIONS)
    assert {s.name for s in train}.isdisjoint(s.name for s in held)
    assert {s.name for s in held} == HELDOUT_FUNCTIONS


def test_every_part_of_a_heldout_function_is_trained():
    train = functions('train')
    for s in functions('heldout'):
        assert any(t.kind == s.kind and t.agg == s.agg for t in train), s.name
        assert any(t.kind == s.kind and t.pred == s.pred for t in train), s.name


def test_sources_parse_and_name_the_function():
    for s in FUNCTIONS.values():
        tree = ast.parse(s.source())
        assert [n.name for n in tree.body] == [s.name]
        assert ast.get_docstring(tree.body[0]).startswith('Return')
        ast.parse(s.source(docstring=False))


# --- mistakes and hidden tests -----------------------------------------------------------------------------------------

def test_mistakes_differ_parse_and_most_functions_have_one():
    with_one = 0
    for s in FUNCTIONS.values():
        ms = mistakes(s)
        with_one += bool(ms)
        assert len(set(ms)) == len(ms)
        for b in ms:
            assert b != s.body
            ast.parse(s.source(b))
            assert fails_on(s, b, [empty_case(s)] + cases_of(hidden_tests(s, 'solution', 0))), (s.name, b)
    assert with_one >= 0.9 * len(FUNCTIONS)


@pytest.mark.parametrize('seed', [0, 1])
def test_hidden_tests_fail_on_every_mistake(seed):
    for s in FUNCTIONS.values():
        cases = cases_of(hidden_tests(s, 'solution', seed))
        assert not fails_on(s, s.body, cases), s.name
        assert [b for b in mistakes(s) if not fails_on(s, b, cases)] == [], s.name


def test_hidden_tests_pass_on_every_reference_in_the_sandbox():
    bad = {}
    for s in FUNCTIONS.values():
        r = run_test_source({'mod.py': s.source()}, hidden_tests(s, 'mod', 0))
        if not passes(r): bad[s.name] = r
    assert bad == {}


def test_hidden_tests_fail_on_a_mistake_in_the_sandbox():
    s = FUNCTIONS['any_even']
    for b in mistakes(s):
        r = run_test_source({'mod.py': s.source(b)}, hidden_tests(s, 'mod', 0))
        assert 'error' not in r and r['failed'] == 1, (b, r)


# --- wording -----------------------------------------------------------------------------------------------------------

def test_own_words_entries_name_heldout_functions_and_their_file():
    entries = WORDING['own_words']
    assert entries and {w['family'] for w in entries} <= set(FAMILIES)
    checked = 0
    for w in entries:
        spec = FUNCTIONS[w['function']]
        assert spec.heldout, w['function']
        assert w['file'].endswith('.py') and w['file'] in w['text'], w
        if w['family'] == 'fix': assert f"test_{w['file']}" in w['text'], w
        else: assert w['function'] in w['text'], w
        for args, value in re.findall(rf"{spec.name}\(([^()]*)\) (?:is|ought to be) (\[[^\]]*\]|'[^']*'|-?\d+|True|False|None)", w['text']):
            assert reference(spec)(*ast.literal_eval(f'({args},)')) == ast.literal_eval(value), w
            checked += 1
    assert checked == sum(w['family'] == 'write' for w in entries)
    objs = own_words_objectives()
    assert [(o.function, o.file, o.text, o.split) for o in objs] == [(w['function'], w['file'], w['text'], 'heldout') for w in entries]


def test_own_words_share_no_five_words_with_training_templates():
    train = [t for f in FAMILIES for t in WORDING[f]['train']] + WORDING['examples']['train']
    grams = set().union(*map(five_grams, train))
    assert five_grams('Write a function `{sig}` in `{file}` that {desc}') <= grams      # the check sees a copied phrase
    assert [w['text'] for w in WORDING['own_words'] if five_grams(w['text']) & grams] == []
    held = [t for f in FAMILIES for t in WORDING[f]['heldout']] + WORDING['examples']['heldout']
    assert set(held).isdisjoint(train)


def test_objectives_use_their_split_templates():
    r = random.Random(0)
    for f in FAMILIES:
        o = make_objective(f, functions('train')[0], r, 'train')
        assert any(o.text.startswith(t.split('`')[0]) for t in WORDING[f]['train']), o.text
    for o in heldout_objectives(3):
        assert o.split == 'heldout' and FUNCTIONS[o.function].heldout and o.text


# --- fix objectives and the expert --------------------------------------------------------------------------------------

def fix_objectives():
    r = random.Random(5)
    train = [make_objective('fix', s, r, 'train', seed=i) for i, s in enumerate(functions('train'))]
    held = [make_objective('fix', s, r, 'heldout', seed=i) for i, s in enumerate(functions('heldout'))]
    return train + held + [o for o in heldout_objectives(8) + own_words_objectives() if o.family == 'fix']


def test_fix_objectives_start_with_tests_that_fail_on_the_bug():
    for o in fix_objectives():
        spec = FUNCTIONS[o.function]
        assert o.bug in mistakes(spec) and o.files[o.file] == spec.source(o.bug)
        cases = cases_of(o.files[o.tests])
        assert fails_on(spec, o.bug, cases) and not fails_on(spec, spec.body, cases), o.function


def test_fix_objectives_fail_in_the_sandbox():
    objs = fix_objectives()
    for o in objs[::10] + [o for o in objs if o.text in {w['text'] for w in WORDING['own_words']}]:
        start = run_test_source({o.file: o.files[o.file]}, o.files[o.tests], name=o.tests)
        assert 'error' not in start and start['failed'] + len(start['errors']) == 1, (o.function, start)   # a raise counts too
        fixed = run_test_source({o.file: FUNCTIONS[o.function].source()}, o.files[o.tests], name=o.tests)
        assert passes(fixed), (o.function, fixed)


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('n_wrong', [0, 1, 2])
def test_trained_flags_are_false_exactly_on_the_mistake_writes(family, n_wrong):
    spec = FUNCTIONS['count_below']
    o = make_objective(family, spec, random.Random(1))
    wrong = [b for b in mistakes(spec) if b != o.bug][:n_wrong]
    plan, actions, trained = scripted_actions(o, wrong)
    assert plan and len(actions) == len(trained) and actions[-1]['name'] == 'finish'
    bodies = {spec.source(b, docstring=d) for b in wrong for d in (True, False)}
    is_mistake = [a['name'] == 'write_file' and a['arguments']['path'] == o.file and a['arguments']['content'] in bodies for a in actions]
    assert sum(is_mistake) == n_wrong
    assert trained == [not m for m in is_mistake]
    last = [a for a in actions if a['name'] == 'write_file' and a['arguments']['path'] == o.file][-1]
    assert last['arguments']['content'] in (spec.source(), spec.source(docstring=False))
