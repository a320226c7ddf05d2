"""Tests for the (description, code) pairs and questions of stage 6 (`codellm.rag.code_pairs`), through the public API on a
small source tree written here: a documented function, a commented one, a method, a nested function and stubs that must be
skipped, a file that does not parse and a test folder."""
import re
from pathlib import Path

import pytest

from codellm.core import CodeLLMError
from codellm.rag.code_pairs import (harvest_functions, module_split, description_query, make_questions, check_answer,
                                    stdlib_root, SKIP_PARTS, PAIR_SPLITS, QUESTION_KINDS, TRAIN_TEMPLATES, OWN_WORDS_TEMPLATES)

MOD = '''import functools

def documented(a, b=1, *rest, key=None, **extra):
    """Add two numbers
    together.

    Details nobody searches for."""
    total = a + b
    return total

# Multiply the value by three
# and hand it back.
@functools.lru_cache
def commented(x):
    return x * 3

class Box:
    def area(self, scale):
        """Return the area of the box."""
        def helper():
            "A nested helper that must be skipped."
            return 1
        return self.size ** 2 * scale * helper()

    def __repr__(self):
        "Show the box as a string."
        return 'Box'

def stub(x):
    "A function that does nothing."
    pass

def abstract(x):
    "A function not written yet."
    raise NotImplementedError
'''


@pytest.fixture
def tree(tmp_path):
    (tmp_path / 'pkg' / 'tests').mkdir(parents=True)
    (tmp_path / 'pkg' / '__init__.py').write_text('def hello(name):\n    "Say hello to someone by name."\n    return "hi " + name\n')
    (tmp_path / 'pkg' / 'mod.py').write_text(MOD)
    (tmp_path / 'pkg' / 'broken.py').write_text('def f(:\n    "A broken file never parses."\n')
    (tmp_path / 'pkg' / 'tests' / 'test_mod.py').write_text('def test_it():\n    "Check that it works fine."\n    assert True\n')
    return tmp_path


def test_harvest_keeps_documented_functions_and_methods(tree):
    recs = harvest_functions(tree)
    assert [r['qualname'] for r in recs] == ['hello', 'documented', 'commented', 'Box.area']   # no helper, dunder, stubs, tests
    assert [r['module'] for r in recs] == ['pkg', 'pkg.mod', 'pkg.mod', 'pkg.mod']
    doc, com, meth = recs[1:]
    assert doc['description'] == 'Add two numbers together.' and doc['origin'] == 'docstring'
    assert doc['code'] == 'def documented(a, b=1, *rest, key=None, **extra):\n    total = a + b\n    return total\n'
    assert doc['params'] == ['a', 'b', 'rest', 'key', 'extra'] and doc['returns'] == 'total'
    assert (com['description'], com['origin']) == ('Multiply the value by three and hand it back.', 'comment')
    assert (com['start_line'], com['end_line']) == (13, 15) and com['code'].startswith('@functools.lru_cache\ndef commented')
    assert meth['params'] == ['scale'] and meth['returns'] == 'self.size ** 2 * scale * helper()'
    assert meth['code'].startswith('def area(self, scale):\n    def helper():') and '"""' not in meth['code']
    assert harvest_functions(tree, files=['pkg/mod.py']) == recs[1:]
    assert [r['name'] for r in harvest_functions(tree, min_words=5)] == ['hello', 'commented', 'area']


def test_harvest_errors_and_stdlib_layout(tmp_path):
    with pytest.raises(CodeLLMError, match='NOT FOUND'): harvest_functions(tmp_path / 'nothing')
    assert (stdlib_root() / 'os.py').is_file() and {'test', 'site-packages', '__phello__'} <= SKIP_PARTS


def test_module_split_is_stable_and_by_package():
    assert module_split('email.mime.text') == module_split('email.utils') == module_split('email')
    assert [module_split(x) for x in ['email', 'json', 'os', 'http', 'unittest', 'typing']] == ['train', 'train', 'train', 'val', 'val', 'test']
    counts = {s: 0 for s in PAIR_SPLITS}
    for i in range(4000): counts[module_split(f'pkg{i}.sub')] += 1
    assert abs(counts['train'] / 4000 - 0.8) < 0.03 and abs(counts['test'] / 4000 - 0.1) < 0.03
    with pytest.raises(CodeLLMError, match='SUMMING TO 1'): module_split('os', fractions=(0.9, 0.9, 0.1))


def test_questions_unique_names_and_answers(tree):
    recs = harvest_functions(tree)
    qs = make_questions(recs, seed=1)
    assert [q['name'] for q in qs] == ['hello', 'documented', 'commented', 'area'] and qs == make_questions(recs, seed=1)
    assert make_questions(recs + recs) == []                                        # no name is unique
    for q in qs: assert check_answer(q['kind'], q['answer'], q['answer'])
    own = make_questions(recs, OWN_WORDS_TEMPLATES, kinds=('which',))
    assert own[0]['question'].startswith(('Which routine matches this summary: Say hello', 'Someone documented a helper as "Say hello'))
    assert {q['answer'] for q in make_questions(recs, kinds=('params',))} == {'name', 'a, b, rest, key, extra', 'x', 'scale'}
    assert description_query({'description': 'Return the area. Raises if negative.'}) == 'Return the area'


def grams(template: str) -> set[tuple]:
    "The three-word sequences of a template; a slot such as {name} counts as a word."
    w = re.findall(r"\{\w+\}|[a-z']+", template.lower())
    return set(zip(w, w[1:], w[2:]))


def test_own_words_share_no_three_words_with_training():
    train = set().union(*(grams(t) for ts in TRAIN_TEMPLATES.values() for t in ts))
    assert set(TRAIN_TEMPLATES) == set(OWN_WORDS_TEMPLATES) == set(QUESTION_KINDS)
    assert all(not grams(t) & train for ts in OWN_WORDS_TEMPLATES.values() for t in ts)


def test_check_answer_accepts_forms_and_rejects_wrong():
    assert check_answer('file', 'It is in `urllib/parse.py`.', 'urllib/parse.py')
    assert not check_answer('file', 'parse.py', 'urllib/parse.py') and not check_answer('file', 'importlib/abc.py', 'abc.py')
    assert check_answer('params', 'safe and string', 'string, safe') and not check_answer('params', 'string', 'string, safe')
    assert check_answer('returns', '`x+1`', 'x + 1') and not check_answer('returns', 'x + 2', 'x + 1')
    assert check_answer('which', 'quote_plus()', 'quote_plus') and not check_answer('which', 'quote', 'quote_plus')
    with pytest.raises(CodeLLMError, match='UNKNOWN QUESTION KIND'): check_answer('colour', 'red', 'red')
