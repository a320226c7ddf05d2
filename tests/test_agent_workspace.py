"""Stage 7's workspace and tools (`codellm.agents.workspace`): every path refusal, atomic writes, code and tests run only in
the sandbox against a copy of the files, the dispatcher that never raises, and observations of bounded size.

Nothing here depends on timing: the only timeouts are for code that never ends (`while True: pass`)."""
import glob, json, os, tempfile, uuid

import pytest

from codellm.core import CodeLLMError
from codellm.tools.sandbox import run_python as sandbox_run
from codellm.agents import workspace as W
from codellm.agents.workspace import (AGENT_TOOLS, MAX_FILE_CHARS, MAX_FILES, OBSERVATION_CHARS, TRANSCRIPT_NAME, PathRefused,
                                      Workspace, call_agent_tool, observation_text, run_test_source)

pytestmark = pytest.mark.filterwarnings('ignore:codellm.tools.sandbox:RuntimeWarning')

SOLUTION = "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s)\n"
BUGGY = "def count_vowels(s):\n    return sum(c in 'aeiou' for c in s[:-1])\n"
TESTS = "from solution import count_vowels\n\ndef test_count():\n    assert count_vowels('banana') == 3\n\ndef test_empty():\n    assert count_vowels('') == 0\n"


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / 'ws'
    root.mkdir()
    (tmp_path / 'secret.txt').write_text('host')
    return Workspace(root)


# --- paths -------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('path, why', [
    ('../secret.txt', 'climbs out'), ('a/../../secret.txt', 'climbs out'), ('..', 'climbs out'),
    ('/etc/passwd', 'absolute'), ('.git/config', 'hidden'), ('.env', 'hidden'), ('src/.cache/x.py', 'hidden'),
    (TRANSCRIPT_NAME, 'record of this run'), ('./' + TRANSCRIPT_NAME, 'record of this run'),
    ('a\x00b.py', 'NUL'), ('', 'non-empty'), ('  ', 'non-empty'), (None, 'non-empty'), (3, 'non-empty'), ('.', 'itself'),
])
def test_resolve_refuses(ws, path, why):
    with pytest.raises(PathRefused, match=why): ws.resolve(path)
    r = ws.write_file(path, 'x = 1')
    assert list(r) == ['error'] and why in r['error'] and '\n' not in r['error']
    assert list(ws.read_file(path)) == ['error']


def test_symlinks(ws, tmp_path):
    (ws.root / 'real.py').write_text('X = 1\n')
    os.symlink('real.py', ws.root / 'inside.py')
    os.symlink(tmp_path / 'secret.txt', ws.root / 'escape.txt')
    os.symlink('..', ws.root / 'up')
    os.symlink(TRANSCRIPT_NAME, ws.root / 'log.json')
    os.symlink('loop_b', ws.root / 'loop_a'); os.symlink('loop_a', ws.root / 'loop_b')
    (ws.root / TRANSCRIPT_NAME).write_text('[]')
    assert ws.resolve('inside.py') == ws.root / 'inside.py'
    assert ws.read_file('inside.py') == {'path': 'inside.py', 'content': 'X = 1\n'}
    for bad, why in [('escape.txt', 'outside'), ('up/secret.txt', 'outside'), ('log.json', 'transcript'), ('loop_a', 'loop')]:
        with pytest.raises(PathRefused, match=why): ws.resolve(bad)
    assert 'host' not in json.dumps(ws.read_file('escape.txt'))
    assert 'symbolic link' in ws.write_file('inside.py', 'X = 2\n')['error']          # no write through a link
    assert (ws.root / 'real.py').read_text() == 'X = 1\n'
    assert ws.list_files() == {'files': ['inside.py', 'real.py']}
    assert set(ws.snapshot()) == {'inside.py', 'real.py'}


def test_workspace_must_exist(tmp_path):
    with pytest.raises(CodeLLMError, match='NOT A FOLDER'): Workspace(tmp_path / 'nope')


# --- files -------------------------------------------------------------------------------------------------------------

def test_write_read_list(ws):
    r = ws.write_file('./pkg//mod.py', 'A = 1\nB = 2')
    assert r == {'ok': True, 'path': 'pkg/mod.py', 'lines': 2, 'chars': 11}
    assert ws.read_file('pkg/mod.py') == {'path': 'pkg/mod.py', 'content': 'A = 1\nB = 2'}
    assert ws.write_file('empty.py', '')['lines'] == 0
    (ws.root / '.git').mkdir(); (ws.root / '.git' / 'HEAD').write_text('ref')
    (ws.root / '.hidden.py').write_text(''); (ws.root / TRANSCRIPT_NAME).write_text('[]')
    assert ws.list_files() == {'files': ['empty.py', 'pkg/mod.py']}
    assert ws.snapshot() == {'empty.py': '', 'pkg/mod.py': 'A = 1\nB = 2'}
    (ws.root / 'bin.dat').write_bytes(b'\xff\xfe')
    assert ws.read_file('bin.dat')['content'] == '\ufffd\ufffd'
    assert 'call list_files' in ws.read_file('missing.py')['error']
    assert 'folder' in ws.read_file('pkg')['error'] and 'folder' in ws.write_file('pkg', 'x')['error']
    assert "'empty.py' is a file" in ws.write_file('empty.py/x.py', '')['error']


def test_too_big_and_not_a_string(ws):
    assert ws.write_file('ok.py', 'x' * MAX_FILE_CHARS)['ok']
    assert 'split it' in ws.write_file('big.py', 'x' * (MAX_FILE_CHARS + 1))['error']
    assert 'must be a string' in ws.write_file('n.py', b'bytes')['error']
    assert not (ws.root / 'big.py').exists()


def test_too_many_files(ws):
    for i in range(MAX_FILES): assert ws.write_file(f'd{i % 3}/f{i}.py', '')['ok']
    assert f'already holds {MAX_FILES} files' in ws.write_file('one_more.py', '')['error']
    assert ws.write_file('d0/f0.py', 'X = 1\n')['ok']              # overwriting is still allowed
    assert len(ws.list_files()['files']) == MAX_FILES


def test_write_is_atomic(ws, monkeypatch):
    ws.write_file('solution.py', SOLUTION)
    ws.write_file('solution.py', BUGGY)
    assert os.listdir(ws.root) == ['solution.py']                  # no temporary file left beside it
    def boom(*a): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', boom)                        # the process "dies" between writing and replacing
    r = call_agent_tool(ws, 'write_file', {'path': 'solution.py', 'content': SOLUTION})
    assert r == {'error': 'OSError: disk full'}
    assert (ws.root / 'solution.py').read_text() == BUGGY          # the old file, whole
    assert os.listdir(ws.root) == ['solution.py']


# --- the sandbox's inputs ----------------------------------------------------------------------------------------------

def test_sandbox_inputs_and_entry():
    marker = f'marker-{uuid.uuid4().hex}.txt'
    r = sandbox_run('import helper\nfrom pkg import m\nprint(helper.X + 1, m.Y)\nopen(%r, "w").write("changed")' % marker,
                    inputs={'helper.py': 'X = 41', 'pkg/m.py': b'Y = 2', marker: 'original'})
    assert (r.returncode, r.stdout) == (0, '42 2\n'), r.stderr
    assert glob.glob(os.path.join(tempfile.gettempdir(), 'codellm-sandbox-*', marker)) == []
    r = sandbox_run('1 / 0', entry='tool.py')
    assert 'tool.py", line 1' in r.stderr and 'main.py' not in r.stderr
    assert 'main.py", line 1' in sandbox_run('1 / 0').stderr        # stage 3's default is unchanged
    for bad in ['../x.py', '/etc/x', '', 'a//b', 'main.py', 'a/./b']:
        with pytest.raises(CodeLLMError, match='ERROR:'): sandbox_run('print(1)', inputs={bad: 'x'})
    for bad in ['../main.py', '/main.py', '', '-c']:
        with pytest.raises(CodeLLMError, match='ENTRY'): sandbox_run('print(1)', entry=bad)
    with pytest.raises(CodeLLMError, match='BOTH A FILE AND A FOLDER'): sandbox_run('print(1)', inputs={'p': '', 'p/q.py': ''})
    with pytest.raises(CodeLLMError, match='STR OR BYTES'): sandbox_run('print(1)', inputs={'a.py': 1})


# --- running code ------------------------------------------------------------------------------------------------------

def test_run_python(ws):
    ws.write_file('solution.py', SOLUTION)
    (ws.root / TRANSCRIPT_NAME).write_text('[]')
    r = ws.run_python(code="import os\nfrom solution import count_vowels\nprint(count_vowels('banana'), sorted(os.listdir('.')))\n"
                           "open('solution.py', 'w').write('ruined')")
    assert r == {'stdout': "3 ['_agent_run.py', 'solution.py']\n", 'stderr': '', 'returncode': 0, 'timed_out': False}
    assert ws.read_file('solution.py')['content'] == SOLUTION         # the run's writes are discarded
    ws.write_file('_agent_run.py', 'print("mine")')
    assert ws.run_python(code='print(open("_agent_run.py").read())')['stdout'] == 'print("mine")\n'
    ws.write_file('app/crash.py', 'x = 1\nraise ValueError("bad input")\n')
    r = ws.run_python(path='app/crash.py')
    assert r['returncode'] == 1 and 'crash.py", line 2' in r['stderr'] and r['stderr'].strip().endswith('ValueError: bad input')
    assert ws.run_python(code='while True: pass', timeout=1)['timed_out'] is True
    for bad in [{}, {'path': 'solution.py', 'code': 'print(1)'}, {'path': '../x.py'}, {'path': 'nothing.py'}, {'code': ''}]:
        assert list(ws.run_python(**bad)) == ['error']


# --- tests -------------------------------------------------------------------------------------------------------------

def test_run_tests_pass_and_fail(ws):
    ws.write_file('solution.py', BUGGY); ws.write_file('test_solution.py', TESTS)
    assert ws.run_tests('test_solution.py') == {
        'passed': 1, 'failed': 1, 'failures': ["test_count: assert count_vowels('banana') == 3 (got 2)"], 'errors': []}
    ws.write_file('solution.py', SOLUTION)
    assert ws.run_tests('test_solution.py') == {'passed': 2, 'failed': 0, 'failures': [], 'errors': []}


def test_run_tests_syntax_errors(ws):
    ws.write_file('test_x.py', 'import os\n\ndef test_a(:\n    pass\n')
    assert ws.run_tests('test_x.py') == {'error': 'test_x.py line 3: invalid syntax'}
    ws.write_file('solution.py', 'def f():\n    return (\n'); ws.write_file('test_y.py', 'from solution import f\ndef test_f(): assert f() == 1\n')
    r = ws.run_tests('test_y.py')
    assert (r['passed'], r['failed'], len(r['errors'])) == (0, 0, 1) and r['errors'][0].startswith('solution.py line 2:'), r


def test_run_tests_no_tests_missing_and_timeout(ws):
    ws.write_file('test_none.py', 'X = 1\ndef helper(): assert False\n')
    assert ws.run_tests('test_none.py')['errors'] == ['no tests found in test_none.py']
    assert 'call list_files' in ws.run_tests('test_missing.py')['error']
    assert 'climbs out' in ws.run_tests('../test.py')['error']
    ws.write_file('test_loop.py', 'def test_loop():\n    while True: pass\n')
    assert ws.run_tests('test_loop.py', timeout=1) == {'error': 'the tests timed out after 1 s', 'timed_out': True}


def test_runner_messages():
    src = ("import json, os\nit = iter([1, 2, 3])\n"
           "def test_once(): assert next(it) == next(it)\n"                 # each side evaluated once: 1 == 2
           "def test_after(): assert next(it) == 3\n"
           "def test_in(): assert 'z' in 'xy', 'no z'\n"
           "def test_name(): f(1)\n"
           "def test_exit(): raise SystemExit(3)\n"
           "def test_print(): print('{\"passed\": 99}')\n"
           "assert 1 + 1 == 2\n")
    r = run_test_source({}, src)
    assert r == {'passed': 3, 'failed': 4, 'errors': [], 'failures': [
        'test_once: assert next(it) == next(it) (got 1 == 2)', "test_in: assert 'z' in 'xy' (got 'z'): no z",
        "test_name: NameError: name 'f' is not defined", 'test_exit: SystemExit: 3']}


def test_run_test_source(ws):
    ws.write_file('solution.py', BUGGY)
    ws.write_file('test_hidden.py', 'def test_fake(): pass\n')              # the hidden tests replace a file of that name
    hidden = "from solution import count_vowels\ndef test_hidden(): assert count_vowels('banana') == 3\n"
    assert run_test_source(ws.snapshot(), hidden)['failures'] == ["test_hidden: assert count_vowels('banana') == 3 (got 2)"]
    assert run_test_source({'solution.py': SOLUTION}, hidden) == {'passed': 1, 'failed': 0, 'failures': [], 'errors': []}
    fake = 'import os\nprint(\'{"passed": 9, "failed": 0, "failures": [], "errors": []}\')\nos._exit(0)\ndef test_a(): pass\n'
    assert 'gave no report' in run_test_source({}, fake)['error']
    assert 'line 1' in run_test_source({}, 'def (')['error']
    assert list(run_test_source({'../x.py': ''}, hidden)) == ['error']
    assert list(run_test_source('not a dict', hidden)) == ['error']


# --- the dispatcher ----------------------------------------------------------------------------------------------------

def test_tool_definitions():
    from codellm.tools.toolbox import tool_definitions
    assert list(AGENT_TOOLS) == ['write_file', 'read_file', 'list_files', 'run_python', 'run_tests', 'search_docs', 'search_code', 'finish']
    shape = lambda d: (sorted(d), sorted(d['parameters']))
    assert all(shape(d) == shape(tool_definitions()[0]) and d['name'] == n for n, d in AGENT_TOOLS.items())
    json.dumps(AGENT_TOOLS)


def test_call_agent_tool(ws, monkeypatch):
    r = call_agent_tool(ws, 'rm', {'path': 'x'})
    assert r['error'].startswith("unknown tool 'rm': use one of write_file, read_file, list_files, run_python")
    assert 'unknown tool None' in call_agent_tool(ws, None, {})['error']
    assert "missing required argument 'content'" in call_agent_tool(ws, 'write_file', {'path': 'a.py'})['error']
    assert "unknown argument 'mode'" in call_agent_tool(ws, 'read_file', {'path': 'a.py', 'mode': 'r'})['error']
    assert 'must be of type string' in call_agent_tool(ws, 'read_file', {'path': ['a.py']})['error']
    assert 'not valid JSON' in call_agent_tool(ws, 'read_file', '{"path": ')['error']
    assert 'JSON object' in call_agent_tool(ws, 'read_file', [1])['error']
    assert 'climbs out' in call_agent_tool(ws, 'read_file', {'path': '../secret.txt'})['error']
    assert call_agent_tool(ws, 'finish', {'summary': 'done'}) == {'finished': True, 'summary': 'done'}
    assert call_agent_tool(ws, 'write_file', '{"path": "a.py", "content": "A = 1"}')['ok'] is True
    assert call_agent_tool(ws, 'list_files', None) == {'files': ['a.py']}
    assert call_agent_tool(ws, 'run_python', {'path': 'a.py'})['returncode'] == 0
    assert call_agent_tool(ws, 'search_code', {'query': 'x'}) == {'error': 'no code index here: build one with codellm index --codebase <folder>'}
    hits = [{'path': 'a.py', 'start_line': 1, 'end_line': 9, 'score': 1.0, 'text': 'A = 1'}]
    assert call_agent_tool(ws, 'search_code', {'query': 'x'}, search_code=lambda q: hits) == {'results': ['a.py:1-9']}
    r = call_agent_tool(ws, 'search_code', {'query': 'x'}, search_code=lambda q: 1 / 0)
    assert r == {'error': 'ZeroDivisionError: division by zero'}
    monkeypatch.setattr(W, 'search_docs', lambda q, k: [{'name': 'json.load', 'signature': 'json.load(fp)', 'summary': 'Read JSON.', 'score': 2.0},
                                                         {'name': 'json.loads', 'signature': 'json.loads(s)', 'summary': 'Parse.', 'score': 1.0}])
    assert call_agent_tool(ws, 'search_docs', {'query': 'json'}) == {'results': ['json.load', 'json.loads'], 'first': 'json.load: Read JSON.'}


# --- observations ------------------------------------------------------------------------------------------------------

def test_observation_bound(ws):
    ws.write_file('solution.py', BUGGY); ws.write_file('test_solution.py', TESTS)
    ws.write_file('big.txt', 'ü' * MAX_FILE_CHARS)
    results = [('run_python', ws.run_python(code='print("x" * 9000)\nraise KeyError("k" * 500)')),
               ('run_python', ws.run_python(code='while True: pass', timeout=1)),
               ('run_tests', ws.run_tests('test_solution.py')),
               ('run_tests', {'passed': 0, 'failed': 3, 'failures': ['f' * 500] * 3, 'errors': ['e' * 500] * 3}),
               ('read_file', ws.read_file('big.txt')), ('write_file', ws.write_file('n.py', 'x\n' * 100)),
               ('list_files', {'files': [f'f{i}.py' for i in range(MAX_FILES)]}), ('finish', {'finished': True, 'summary': 's' * 999}),
               ('read_file', {'error': 'e' * 999}), ('run_python', 'not a dict')]
    for name, r in results:
        text = observation_text(name, r)
        assert len(text) <= OBSERVATION_CHARS and text == observation_text(name, json.loads(json.dumps(r)))
        if len(json.dumps(W._view(name, r), ensure_ascii=False)) > OBSERVATION_CHARS: assert text.endswith('...'), (name, text)
    assert len(observation_text('read_file', results[4][1], 50)) == 50
    v = json.loads(observation_text('run_python', results[1][1]))
    assert v['timed_out'] is True
    assert 'timed_out' not in json.loads(observation_text('run_python', {'stdout': 'hi\n', 'stderr': '', 'returncode': 0, 'timed_out': False}))
    assert observation_text('write_file', results[5][1]) == '{"ok": true, "path": "n.py", "lines": 100}'
    assert observation_text('run_tests', results[2][1]) == (
        '{"passed": 1, "failed": 1, "failures": ["test_count: assert count_vowels(\'banana\') == 3 (got 2)"]}')
    assert "KeyError: 'kkk" in observation_text('run_python', results[0][1])     # a long last line keeps its start
