"""Tests for `codellm.tools.toolbox`: the registry and its schemas, argument validation, `call_tool`'s error paths,
`analyze_code` on tricky inputs, the BM25 ranking under `search_docs`, and `search_docs` ranking and caching."""
import inspect, json, math

import pytest

from codellm.tools import toolbox as tools
from codellm.core import CodeLLMError
from codellm.tools.toolbox import (TOOLS, Tool, DocsIndex, analyze_code, call_tool, cyclomatic_complexity, doc_tokens,
                                   get_docs_index, search_docs, tool_definitions, validate_arguments, write_tool_definitions)
from codellm.tools.toolbox import BM25Index, stem, tokenize

pytestmark = pytest.mark.filterwarnings('ignore:codellm.tools.sandbox:RuntimeWarning')


@pytest.fixture(scope='module', autouse=True)
def private_processed_dir(tmp_path_factory):
    "Point processed_dir() at a temporary folder: the tests build their own docs index and definitions file."
    d = tmp_path_factory.mktemp('processed')
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tools, 'processed_dir', lambda: d)
        mp.setattr(tools, '_INDEXES', {})
        yield d


# ---------------------------------------------------------------- registry and schemas

def test_registry_names_and_shapes():
    assert list(TOOLS) == ['execute_python', 'search_docs', 'analyze_code']
    for name, tool in TOOLS.items():
        assert isinstance(tool, Tool) and callable(tool.fn)
        fn, d = tool                                            # unpacks as (function, definition)
        assert set(d) == {'name', 'description', 'parameters'} and d['name'] == name and len(d['description']) > 20
        p = d['parameters']
        assert p['type'] == 'object' and p['additionalProperties'] is False
        assert set(p['required']) <= set(p['properties'])
        for prop in p['properties'].values():
            assert prop['type'] in ('string', 'integer', 'number', 'boolean', 'array', 'object') and prop['description']


@pytest.mark.parametrize('name', list(TOOLS))
def test_schema_matches_function_signature(name):
    "The schema's properties are the function's parameters; the required ones are those without defaults."
    fn, d = TOOLS[name]
    params = inspect.signature(fn).parameters
    assert set(d['parameters']['properties']) == set(params)
    assert set(d['parameters']['required']) == {n for n, p in params.items() if p.default is inspect.Parameter.empty}
    for n, prop in d['parameters']['properties'].items():
        if 'default' in prop: assert prop['default'] == params[n].default


def test_tool_definitions_file(tmp_path, private_processed_dir):
    defs = tool_definitions()
    assert [x['name'] for x in defs] == list(TOOLS)
    json.dumps(defs)
    p = write_tool_definitions(tmp_path / 'sub' / 'defs.json')
    assert json.loads(p.read_text()) == defs
    p = write_tool_definitions()
    assert p == private_processed_dir / 'tool_definitions.json' and json.loads(p.read_text()) == defs


# ---------------------------------------------------------------- validation

SEARCH = TOOLS['search_docs'].definition['parameters']
RUN = TOOLS['execute_python'].definition['parameters']


def test_validate_ok():
    assert validate_arguments({'query': 'x'}, SEARCH) == []
    assert validate_arguments({'query': 'x', 'k': 20}, SEARCH) == []
    assert validate_arguments({'code': 'pass', 'timeout': 2}, RUN) == []          # an int is a JSON number
    assert validate_arguments({'code': 'pass', 'timeout': 2.5}, RUN) == []


@pytest.mark.parametrize('args, schema, expected', [
    ({}, SEARCH, ["missing required argument 'query'"]),
    ({'query': 'x', 'limit': 3}, SEARCH, ["unknown argument 'limit'"]),
    ({'query': 3}, SEARCH, ["argument 'query' must be of type string"]),
    ({'query': 'x', 'k': '3'}, SEARCH, ["argument 'k' must be of type integer"]),
    ({'query': 'x', 'k': 3.0}, SEARCH, ["argument 'k' must be of type integer"]),
    ({'query': 'x', 'k': True}, SEARCH, ["argument 'k' must be of type integer, got bool"]),
    ({'query': 'x', 'k': 0}, SEARCH, ["argument 'k' must be >= 1"]),
    ({'query': 'x', 'k': 21}, SEARCH, ["argument 'k' must be <= 20"]),
    ({'query': ''}, SEARCH, ["argument 'query' must not be shorter than 1"]),
    ({'query': 'x' * 501}, SEARCH, ["argument 'query' is longer than 500"]),
    ({'code': 'pass', 'timeout': math.nan}, RUN, ["argument 'timeout' must be a finite number"]),
    ({'code': 'pass', 'timeout': math.inf}, RUN, ["argument 'timeout' must be a finite number"]),
    ({'code': 'pass', 'timeout': False}, RUN, ["argument 'timeout' must be of type number"]),
    ({'code': None}, RUN, ["argument 'code' must be of type string"]),
])
def test_validate_errors(args, schema, expected):
    errors = validate_arguments(args, schema)
    assert len(errors) == len(expected)
    for e, x in zip(errors, expected): assert e.startswith(x), (e, x)


def test_validate_collects_all_problems():
    errors = validate_arguments({'k': 0, 'n': 1}, SEARCH)
    assert len(errors) == 3 and any('query' in e for e in errors) and any("'n'" in e for e in errors)


# ---------------------------------------------------------------- call_tool

@pytest.mark.parametrize('name, args, fragment', [
    ('rm_rf', {}, "unknown tool 'rm_rf'"),
    (None, {}, 'unknown tool None'),
    (3, {}, 'unknown tool 3'),
    ('search_docs', None, "missing required argument 'query'"),
    ('search_docs', {}, "missing required argument 'query'"),
    ('search_docs', '', "missing required argument 'query'"),
    ('search_docs', '{"query": ', 'not valid JSON'),
    ('search_docs', '["sort"]', 'must be a JSON object, got list'),
    ('search_docs', 42, 'must be a JSON object, got int'),
    ('search_docs', {'query': 'x', 'extra': 1}, "unknown argument 'extra'"),
    ('execute_python', {'code': 'print(1)', 'timeout': 1000}, "'timeout' must be <= 30"),
    ('execute_python', {'code': 123}, "'code' must be of type string"),
    ('analyze_code', {'source': 'x'}, "missing required argument 'code'"),
])
def test_call_tool_bad_input_never_raises(name, args, fragment):
    out = call_tool(name, args)
    assert list(out) == ['error'] and fragment in out['error'], out
    json.dumps(out)


def test_call_tool_tool_exceptions_and_bad_results(monkeypatch):
    definition = {'name': 'boom', 'description': 'fails', 'parameters': {'type': 'object', 'properties': {}, 'required': []}}
    def boom(): raise RuntimeError('kaput')
    monkeypatch.setitem(TOOLS, 'boom', Tool(boom, definition))
    assert call_tool('boom', {}) == {'error': 'boom failed: RuntimeError: kaput'}
    monkeypatch.setitem(TOOLS, 'boom', Tool(lambda: {'a': {1, 2}}, definition))        # not JSON-serialisable
    assert call_tool('boom', {})['error'].startswith('boom failed: TypeError')
    monkeypatch.setitem(TOOLS, 'boom', Tool(lambda: [1, 2], definition))                # a list comes back wrapped
    assert call_tool('boom') == {'results': [1, 2]}


def test_call_tool_success_paths():
    out = call_tool('execute_python', {'code': 'import statistics\nprint(statistics.mean([1, 2, 3, 4]))'})
    assert out['stdout'] == '2.5\n' and out['returncode'] == 0 and 'wall-timeout' in out['protections']
    out = call_tool('execute_python', json.dumps({'code': 'while True: pass', 'timeout': 0.5}))
    assert out['timed_out'] is True
    out = call_tool('search_docs', {'query': 'sort a list in place', 'k': 2})
    assert len(out['results']) == 2 and out['results'][0]['name'] == 'list.sort'
    out = call_tool('analyze_code', {'code': 'def f(:'})
    assert out['ok'] is False and out['syntax_errors'][0]['line'] == 1
    for o in (out,): json.dumps(o)


# ---------------------------------------------------------------- analyze_code

def names(report, key='undefined_names'): return [u['name'] for u in report[key]]


@pytest.mark.parametrize('code, line, col', [
    ('def f(:\n    pass', 1, 7),
    ('x = 1\nif x\n    print(x)', 2, 5),
    ('x = (1,\n', 1, 5),
    ('print("a" "b)', 1, 11),
    ('return 1', 1, 1),                          # found by the compiler, not the parser
    ('def f():\n    nonlocal x', 2, 5),
])
def test_syntax_errors(code, line, col):
    r = analyze_code(code)
    assert r['ok'] is False and r['syntax_errors'][0]['line'] == line and r['syntax_errors'][0]['col'] == col
    assert r['syntax_errors'][0]['message'] and r['functions'] == [] and r['undefined_names'] == []


def test_hostile_inputs_do_not_raise():
    assert analyze_code('x = 1\x00')['ok'] is False                     # a null byte
    for deep in ['x = ' + '-' * 100_000 + '1', 'x = ' + '1+' * 2000 + '1']:   # nested beyond the recursion limit
        r = analyze_code(deep)
        assert r['ok'] is False and r['syntax_errors'][0]['message'].startswith('cannot analyse'), r['syntax_errors']
    assert analyze_code('x = ' + '1+' * 300 + '1')['ok'] is True     # long, but within the limit
    assert analyze_code('')['ok'] is True
    assert analyze_code('x = ' + '[' * 300 + ']' * 300)['ok'] is False   # too many nested parentheses
    with pytest.raises(CodeLLMError): analyze_code(b'x = 1')


def test_undefined_names_scoping():
    r = analyze_code('''
import os.path, collections as col
from json import loads as parse
def f(a, /, b=1, *args, c, d=2, **kw):
    return a, b, c, d, args, kw, os.path.sep, col, parse, f
def g(x=a): pass                          # the default is evaluated at module level: `a` is undefined there
class C(Base):                            # undefined base class
    attr = 1
    other = attr + 1                      # class body reads its own names
    def m(self):
        return attr                       # ... but methods do not see them
    def n(self): return __class__, super(), self.attr, __name__
def outer():
    v = 1
    class Inner:
        w = v                             # a class body sees the enclosing function
    return Inner
lam = lambda q, r=undefined_default: q + r + undefined_in_lambda
async def co():
    async for i in agen(): await i
    async with ctx() as c: return c
del never_bound
print(later)
later = 1
''')
    assert names(r) == ['a', 'Base', 'attr', 'undefined_default', 'undefined_in_lambda', 'agen', 'ctx', 'never_bound']
    assert r['undefined_names'][0] == {'name': 'a', 'line': 6, 'col': 8, 'scope': '<module>'}
    assert r['undefined_names'][2]['scope'] == 'C.m'


def test_undefined_names_comprehensions_walrus_global_nonlocal_match():
    r = analyze_code('''
data = [1, 2, 3]
squares = [x * x for x in data if x > 1]
pairs = {k: v for k, v in zip(data, data)}
nested = [y for row in [[1]] for y in row]
leak = x                                   # comprehension variables do not leak
if any((hit := n) > 2 for n in data): print(hit)
def setter():
    global CONFIG
    CONFIG = 1
def getter(): return CONFIG
def counter():
    n = 0
    def inc():
        nonlocal n
        n += 1
        return n
    return inc
try: pass
except (ValueError, OSError) as err: print(err)
match data:
    case [first, *rest] if first: print(first, rest)
    case {"key": value, **others}: print(value, others)
    case Point(x=px) as pt: print(px, pt)
    case _: pass
class K:
    items = [1, 2]
    doubled = [i * 2 for i in items]       # the first iterable runs in the class body: fine
    tripled = [i * j for i in items for j in items]   # the second does not: NameError at run time
''')
    assert names(r) == ['x', 'Point', 'items']
    assert r['undefined_names'][-1]['line'] == 29
    assert analyze_code('from os import *\nprint(listdir, whatever)')['undefined_names'] == []
    assert 'star import' in analyze_code('from os import *')['notes'][0]


def test_complexity():
    src = '''
def simple(): return 1
def branches(a, b, c):
    if a and b and c:          # +1 if, +2 and
        pass
    elif a or b:               # +1 elif, +1 or
        pass
    else:
        pass
    while a:                   # +1
        a -= 1
    for i in range(3):         # +1
        try: pass
        except ValueError: pass   # +1
        except TypeError: pass    # +1
        finally: pass
    with open("f") as f: pass  # +0
    return [x for x in b if x if not x] or (1 if c else 2)   # +1 for, +2 ifs, +1 or, +1 ternary
def matcher(cmd):
    match cmd:
        case "go": return 1    # +1
        case "stop": return 2  # +1
        case _: return 3       # +0: the else of a match
def outer(x):
    def inner(y):              # scored on its own
        if y: return 1
        return 2
    f = lambda z: 1 if z else 2   # a lambda counts for its function: +1
    return inner, f
'''
    r = {f['name']: f for f in analyze_code(src)['functions']}
    assert {n: f['complexity'] for n, f in r.items()} == {'simple': 1, 'branches': 15, 'matcher': 3, 'outer': 2, 'outer.<locals>.inner': 2}
    assert r['branches']['rank'] == 'high' and r['simple']['rank'] == 'low'
    assert (r['branches']['line'], r['branches']['end_line']) == (3, 18)
    import ast
    assert cyclomatic_complexity(ast.parse('async def f(xs):\n    async for x in xs:\n        pass').body[0]) == 2


def test_risky_calls():
    r = analyze_code('''
import os, subprocess as sp, pickle, builtins, yaml
from os import system as run_it, popen
from subprocess import check_output, getoutput
sp.run(["ls"])
sp.run(["ls"], shell=False)
sp.run("ls " + name, shell=True)
check_output(cmd, shell=use_shell)
getoutput("ls")
run_it("ls"); popen("ls"); os.system("ls")
pickle.loads(blob); yaml.load(text)
eval("1"); exec("x = 1"); builtins.eval("2"); compile("1", "f", "eval"); __import__("os")
os.path.join("a", "b"); model.eval(); df.query("x > 1")
os.execv("/bin/ls", ["ls"])
''')
    calls = [(c['call'], c['line']) for c in r['risky_calls']]
    assert calls == [('subprocess.run', 7), ('subprocess.check_output', 8), ('subprocess.getoutput', 9),
                     ('os.system', 10), ('os.popen', 10), ('os.system', 10), ('pickle.loads', 11), ('yaml.load', 11),
                     ('eval', 12), ('exec', 12), ('eval', 12), ('compile', 12), ('__import__', 12), ('os.execv', 14)]
    assert all(c['reason'] for c in r['risky_calls'])


def test_unused_variables():
    r = analyze_code('''
module_level = 1                 # not reported: another module may import it
def f(arg, unused_arg):
    unused = compute()
    used = 2
    _ignored = 3
    a, b = pair()                # unpacking: not reported
    total: int = 0               # annotated assignment: reported
    declared: int                # annotation only: not an assignment
    count = 0
    count += 1                   # augmented assignment reads it
    for i in range(3): pass      # loop variable: not reported
    def closure(): return used   # read by a nested function
    if (w := 5): pass            # walrus, never read
    return closure
def g():
    global G
    G = 1                        # global: not reported
    x = 1
    return locals()              # locals(): cannot tell, not reported
def compute(): return 0
def pair(): return 1, 2
''')
    assert [(u['name'], u['function'], u['line']) for u in r['unused_variables']] == [
        ('unused', 'f', 4), ('total', 'f', 8), ('w', 'f', 14)]


def test_analyze_result_is_json():
    r = analyze_code('import os\ndef f(x):\n    y = eval(x)\n    return z\n')
    assert json.loads(json.dumps(r)) == r
    assert set(r) == {'ok', 'syntax_errors', 'undefined_names', 'functions', 'risky_calls', 'unused_variables', 'notes'}


# ---------------------------------------------------------------- BM25: generic ranking (stage 6 reuses it)

def test_tokenize_and_stem():
    assert tokenize('JSONDecoder.raw_decode') == ['jsondecoder', 'raw', 'decode']
    assert tokenize('The sorted() list, sorting lists') == ['sort', 'list', 'sort', 'list']
    assert [stem(w) for w in ('sorts', 'sorted', 'sorting', 'uses', 'is')] == ['sort', 'sort', 'sort', 'use', 'is']


def test_bm25_index_is_generic():
    docs = ['The cat sat on the mat.', 'A dog sat on a log.', 'Cats and dogs.']
    idx = BM25Index(docs)                                              # plain strings, tokenized with `tokenize`
    assert [i for i, _ in idx.rank('cat')] == [2, 0]                   # same count: the shorter document wins
    assert [i for i, _ in idx.rank('sat')] == [0, 1]                   # a tie: document order ...
    assert [i for i, _ in idx.rank('sat', key=len)] == [1, 0]          # ... or the caller's key
    assert idx.rank('cat', k=1) == idx.rank('cat')[:1]
    assert idx.rank('the on a') == [] and idx.rank('zebra') == []       # stop words and unknown words score nothing
    assert BM25Index(docs, tfs=idx.tfs).rank('dog cat') == idx.rank('dog cat')   # from cached term counts
    chunks = [{'text': d} for d in docs]                               # any document type, with its own tokens()
    assert BM25Index(chunks, tokens=lambda c: tokenize(c['text'])).rank('dog cat') == idx.rank('dog cat')
    words = lambda s: s.lower().replace('.', '').split()                  # no stop words dropped, no stems
    own = BM25Index(docs, tokens=words, query_tokens=words)               # queries tokenized like the documents
    assert [i for i, _ in own.rank('the')] == [0] and own.rank('cat') == [(0, own.rank('cat')[0][1])]


def test_docs_index_weights_fields_and_ties_by_name():
    assert doc_tokens({'name': 'list.sort', 'summary': 'Sort the list.', 'doc': 'Sort in place.'}) == \
        ['sort'] * 3 + ['list'] + ['sort', 'list'] * 2 + ['sort', 'place']
    docs = [{'name': n, 'signature': f'{n}()', 'summary': 'Read a file.', 'doc': ''} for n in ('b.read', 'a.read')]
    hits = DocsIndex(docs).search('read file')
    assert [h['name'] for h in hits] == ['a.read', 'b.read'] and hits[0]['score'] == hits[1]['score'] > 0
    assert set(hits[0]) == {'name', 'signature', 'summary', 'score'}


# ---------------------------------------------------------------- search_docs

@pytest.mark.parametrize('query, expected, top', [
    ('sort a list in place', 'list.sort', 1),
    ('sort a list', 'sorted', 5),
    ('read a json file', 'json.load', 1),
    ('parse a json string', 'json.loads', 3),
    ('square root', 'math.sqrt', 1),
    ('join path components', 'os.path.join', 1),
    ('sleep for seconds', 'time.sleep', 1),
    ('hash a string sha256', 'hashlib.sha256', 1),
    ('write rows to a csv file', 'csv.writer', 1),
    ('deep copy an object', 'copy.deepcopy', 1),
    ('list files in a directory', 'os.listdir', 3),
    ('random integer', 'random.randint', 3),
    ('split a string by whitespace', 'str.split', 3),
    ('base64 encode bytes', 'base64.b64encode', 5),
])
def test_search_ranking(query, expected, top):
    hits = search_docs(query, k=top)
    assert expected in [h['name'] for h in hits], (query, hits)


def test_search_hits_shape():
    hits = search_docs('read a json file', k=4)
    assert len(hits) == 4
    for h in hits:
        assert set(h) == {'name', 'signature', 'summary', 'score'} and h['score'] > 0
    assert [h['score'] for h in hits] == sorted((h['score'] for h in hits), reverse=True)
    assert hits[0]['signature'].startswith('json.load(fp') and 'Deserialize' in hits[0]['summary']
    assert search_docs('qwzx vbnm') == [] and search_docs('') == []
    assert len(search_docs('file', k=1000)) == 50                       # k is clamped when called directly
    with pytest.raises(CodeLLMError): search_docs(None)


def test_index_is_cached(tmp_path, monkeypatch):
    p = tmp_path / 'docs_index.json'
    builds = []
    build = tools.build_docs_index
    monkeypatch.setattr(tools, 'build_docs_index', lambda *a, **kw: builds.append(a) or build(*a, **kw))
    built = get_docs_index(p)
    assert p.exists() and len(builds) == 1                               # first call: built and written
    written = (p.stat().st_ino, p.stat().st_mtime_ns)
    assert get_docs_index(p) is built                                    # second call: from memory
    tools._INDEXES.clear()
    loaded = get_docs_index(p)
    assert len(builds) == 1 and (p.stat().st_ino, p.stat().st_mtime_ns) == written   # third: loaded from the file, not rebuilt
    assert loaded is not built and loaded.search('square root') == built.search('square root')
    raw = json.loads(p.read_text())
    assert raw['python'] and raw['modules'] == tools.DOC_MODULES and len(raw['docs']) == len(raw['tfs']) > 2000


def test_index_rebuilt_when_stale_or_damaged(tmp_path):
    p = tmp_path / 'docs_index.json'
    small = get_docs_index(p, modules=['json'])
    assert {d['name'] for d in small.docs} >= {'json', 'json.load'} and not any(d['name'].startswith('math') for d in small.docs)
    tools._INDEXES.clear()
    bigger = get_docs_index(p, modules=['json', 'math'])                  # another module list: rebuilt
    assert any(d['name'] == 'math.sqrt' for d in bigger.docs)
    p.write_text('{"version": 1, "docs": [')                              # a damaged cache
    tools._INDEXES.clear()
    assert get_docs_index(p, modules=['json']).search('read a json file')[0]['name'] == 'json.load'
    assert json.loads(p.read_text())['modules'] == ['json']
