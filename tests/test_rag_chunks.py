"""Tests for `codellm.rag.chunks` through its public API: the walk's one-line errors and its counts on a tiny tree, and
chunks that obey the budget, cover every file once in order, and come out the same every time."""
import os
from pathlib import Path

import pytest

from codellm.core import CodeLLMError
from codellm.rag.chunks import Chunk, chunk_codebase, chunk_text, read_code, walk_codebase

words = lambda s: len(s.split())        # a stand-in tokenizer: one token per word


def one_line(excinfo, *expected):
    msg = str(excinfo.value)
    assert '\n' not in msg and msg.startswith('ERROR:') and 'Run:' in msg, msg
    for e in expected: assert e in msg, msg


def write(root: Path, files: dict):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(text) if isinstance(text, bytes) else (root / rel).write_text(text)


TREE = {'app.py': '"A tiny app."\nimport os\n\n' + ''.join(f'def f{i}(x):\n    "Step {i}."\n    return x + {i}\n\n' for i in range(30)),
        'docs/guide.md': '# Guide\n\nRun it.\n\n## More\n\nAnd more.\n',
        'docs/data.bin.py': b'\x00\x01binary',
        '.git/HEAD': 'ref: refs/heads/main\n', 'venv-x/pyvenv.cfg': 'home = /usr\n', 'venv-x/lib/os.py': 'x = 1\n',
        'notes.txt': 'plain text\n'}


@pytest.fixture
def tree(tmp_path):
    write(tmp_path, TREE)
    (tmp_path / 'docs/up').symlink_to('..', target_is_directory=True)
    return tmp_path


def test_bad_root_is_one_line(tmp_path):
    with pytest.raises(CodeLLMError) as e: walk_codebase(tmp_path / 'missing')
    one_line(e, 'CODEBASE NOT FOUND', '--codebase')
    (tmp_path / 'a.txt').write_text('x')
    with pytest.raises(CodeLLMError) as e: chunk_codebase(tmp_path / 'a.txt', words)
    one_line(e, 'CODEBASE NOT FOUND')
    with pytest.raises(CodeLLMError) as e: walk_codebase(tmp_path)
    one_line(e, 'NO .py, .md FILES UNDER', '--extensions')
    with pytest.raises(CodeLLMError) as e: chunk_codebase(tmp_path, words, chunk_size=4)
    one_line(e, '--chunk-size')


def test_walk_counts(tree):
    files, summary = walk_codebase(tree)
    assert [p.relative_to(tree).as_posix() for p in files] == ['app.py', 'docs/guide.md']
    assert summary == dict(files=2, skipped_dirs=2, binary=1, oversized=0, unreadable=0, symlink_loops=1, duplicates=0,
                           other_extensions=1)
    assert walk_codebase(tree, ['PY'])[0] == files[:1]                      # any case, dot optional


def test_chunks_budget_cover_and_determinism(tree):
    chunks, summary = chunk_codebase(tree, words, chunk_size=40)
    assert summary['chunks'] == len(chunks) and summary['files'] == 2
    assert all(words(c.text) <= 40 for c in chunks)
    for path in ('app.py', 'docs/guide.md'):                                # every non-blank line once, in order
        text, mine = (tree / path).read_text(), [c for c in chunks if c.path == path]
        assert ''.join(c.text for c in mine).split() == text.split()
        assert [c.start_line for c in mine] == sorted(c.start_line for c in mine)
        assert all(a.end_line < b.start_line for a, b in zip(mine, mine[1:]))
    app = [c for c in chunks if c.path == 'app.py']
    assert all(c.text.startswith('def ') for c in app[1:])                  # every later chunk starts at a function
    assert chunk_codebase(tree, words, chunk_size=40) == (chunks, summary)
    assert Chunk.from_dict(chunks[0].to_dict()) == chunks[0]
    assert chunks[0].header() == f'# app.py:1-{chunks[0].end_line}'


def test_hash_changes_with_text_only():
    text = ''.join(f'def f{i}(x):\n    return x + {i}\n\n' for i in range(20))
    a = chunk_text(text, 'm.py', words, 24)
    b = chunk_text(text.replace('x + 7', 'y + 7'), 'm.py', words, 24)
    assert len(a) == len(b) > 2
    assert [x.hash == y.hash for x, y in zip(a, b)] == [x.text == y.text for x, y in zip(a, b)]
    assert sum(x.hash != y.hash for x, y in zip(a, b)) == 1


def test_notebook_is_read_as_cells(tmp_path):
    (tmp_path / 'n.ipynb').write_text('{"cells": [{"cell_type": "markdown", "source": ["# T"]}, {"cell_type": "code", "source": "x = 1"}]}')
    (tmp_path / 'bad.ipynb').write_text('{"cells": [')
    assert read_code(tmp_path / 'n.ipynb') == '# %% [markdown]\n# T\n# %%\nx = 1\n'
    assert read_code(tmp_path / 'bad.ipynb') is None
    chunks, summary = chunk_codebase(tmp_path, words, extensions='ipynb')
    assert [c.kind for c in chunks] == ['notebook'] and summary['unreadable'] == 1 and summary['files'] == 1
