"Tests for codellm.stages.manuals: the harvest (family filter, aliases, duplicates, no manuals), the parser on a page written by hand, the generated pairs, the held-out set of bash_heldout.toml and the retrieval baseline."
import gzip, shutil

import pytest

from codellm.stages import manuals as M
from codellm.stages.bash_checks import check_scripts, shellcheck_available, uses_expected_commands
from codellm.stages.bash_data import TASK_TEMPLATES, Pair


@pytest.fixture
def man_tree(tmp_path):
    "A man1 folder: the example page, an alias of it, a copy under another name, 60 pages of one family, a broken file."
    d = tmp_path / 'man' / 'man1'
    d.mkdir(parents=True)
    (d / 'tally.1.gz').write_bytes(gzip.compress(M.EXAMPLE_PAGE.encode()))
    (d / 'count.1.gz').write_bytes(gzip.compress(b'.so man1/tally.1\n'))
    (d / 'tally2.1').write_text(M.EXAMPLE_PAGE)
    for i in range(60):
        (d / f'cloudsdk_sub_{i}.1').write_text(f'.TH X 1\n.SH NAME\ncloudsdk_sub_{i} \\- subcommand {i}\n')
    (d / 'broken.1.gz').write_bytes(b'not gzip at all')
    return tmp_path / 'man'


def test_family_filter_is_generic():
    names = [f'/m/man1/sdk_{i}.1.gz' for i in range(51)] + [f'/m/man1/git-{c}.1.gz' for c in ('log', 'add')] + ['/m/man1/wc.1.gz']
    kept, dropped = M.drop_families(names, max_family=50)
    assert dict(dropped) == {'sdk': 51} and len(kept) == 3
    kept, dropped = M.drop_families(names, max_family=51)            # at the limit: kept
    assert not dropped and len(kept) == len(names)
    assert M.family('gcloud_compute_ssh') == 'gcloud' and M.family('git-log') == 'git' and M.family('wc') == 'wc'


@pytest.mark.parametrize('renderer', ['strip', 'groff', 'man'])
def test_harvest_counts_every_file(man_tree, renderer):
    if renderer != 'strip' and not shutil.which(renderer): pytest.skip(f'{renderer} is not installed')
    pages, st = M.harvest_manuals(roots=(str(man_tree),), sections=('1',), renderer=renderer, workers=2)
    assert st.found == 64 and st.dropped_family == 60 and st.families == {'cloudsdk': 60}
    assert (st.aliases, st.unreadable, st.duplicates, st.kept) == (1, 1, 1, 1)
    assert st.found == (st.dropped_family + st.unreadable + st.aliases + st.no_name + st.duplicates + st.over_budget + st.kept)
    e = M.parse_manual(pages[0].text, pages[0].name, pages[0].section)
    assert e.description == 'count the lines, words and letters of each file'
    assert [o.flags for o in e.options if o.clean][:2] == [('-l', '--lines'), ('-n', '--top')]


def test_harvest_size_bounds(man_tree):
    pages, st = M.harvest_manuals(roots=(str(man_tree),), sections=('1',), renderer='strip', max_page_bytes=200)
    assert st.truncated == 1 and all(len(p.text.encode()) <= 200 for p in pages)
    pages, st = M.harvest_manuals(roots=(str(man_tree),), sections=('1',), renderer='strip', max_total_bytes=10)
    assert pages == [] and st.over_budget == 1


def test_no_manuals_gives_an_empty_harvest_and_a_note(tmp_path):
    pages, entries, note = M.load_manuals(roots=(str(tmp_path / 'nothing'),))
    assert pages == [] and entries == [] and 'no manual pages' in note
    assert M.manual_pairs(entries, 100)[0] == [] and M.manual_text_docs(pages, 1000) == []


def test_cache_is_reused_and_invalidated(man_tree, tmp_path):
    cache = tmp_path / 'cache.json'
    p1, n1 = M.harvest_manuals_cached(cache, roots=(str(man_tree),), sections=('1',), renderer='strip')
    p2, n2 = M.harvest_manuals_cached(cache, roots=(str(man_tree),), sections=('1',), renderer='strip')
    assert p1 == p2 and n2.endswith('(cached)') and not n1.endswith('(cached)')
    p3, n3 = M.harvest_manuals_cached(cache, roots=(str(man_tree),), sections=('1',), renderer='strip', max_family=100)
    assert not n3.endswith('(cached)') and len(p3) > len(p1)     # another setting: harvested again (the family is kept now)


def test_parser_on_the_example_page():
    e = M.parse_manual(M.strip_roff(M.EXAMPLE_PAGE), 'tally', '1')
    assert e.names == ('tally',) and e.synopsis == ('tally [OPTION]... [FILE]...',) and M.operand_kind(e) == 'file'
    got = [(o.flags, o.arg, o.clean, o.description) for o in e.options]
    assert got == [(('-l', '--lines'), None, True, 'print only the line count of each file'),
                   (('-n', '--top'), 'NUM', True, 'print the NUM longest lines'),
                   (('-z',), None, True, 'like -l, but for NUL-separated records'),
                   (('-x',), None, False, 'when colour the output when asked'),
                   (('--help',), None, True, 'display this help and exit')]
    assert M.parse_manual('NAME\n       no dash here\n') is None


def test_flag_grammar():
    assert M.parse_flags('-n, --lines=[-]NUM')[:2] == (('-n', '--lines'), 'NUM')
    assert M.parse_flags('-e PATTERNS, --regexp=PATTERNS')[:2] == (('-e', '--regexp'), 'PATTERNS')
    assert M.parse_flags('--color[=WHEN]')[:2] == (('--color',), None)
    assert M.parse_flags('-H     equivalent to -D')[:3] == (('-H',), None, 'equivalent to -D')
    assert M.parse_flags('not a flag')[3] is False


def test_pairs_from_the_example_are_checked_and_seeded():
    e = M.parse_manual(M.strip_roff(M.EXAMPLE_PAGE), 'tally', '1')
    pairs, stats = M.manual_pairs([e], 30, seed=3, on_path=None)
    assert len(pairs) == 30 and stats['checked_ok'] == 3 and stats['filtered']
    assert [p.task for p in pairs] == [p.task for p in M.manual_pairs([e], 30, seed=3, on_path=None)[0]]
    assert [p.task for p in pairs] != [p.task for p in M.manual_pairs([e], 30, seed=4, on_path=None)[0]]
    for p, c in zip(pairs, check_scripts([p.script for p in pairs], shellcheck=shellcheck_available())):
        assert c['bash_ok'] and not c['shellcheck'], (p.script, c)
        assert uses_expected_commands(p.script, p) and '{{' not in p.task + p.script
    assert not M.manual_pairs([e], 5, on_path=lambda name: None)[0]      # a command that is not installed gives nothing


@pytest.fixture(scope='module')
def machine_entries():
    if not M.man_files(): pytest.skip('this machine has no manual pages')
    return M.load_manuals()[1]


def test_pairs_from_this_machine_pass_bash_n(machine_entries):
    pairs, stats = M.manual_pairs(machine_entries, 400, seed=0)
    assert len(pairs) == 400 and stats['commands'] >= 20
    assert all(c['bash_ok'] for c in check_scripts([p.script for p in pairs], shellcheck=False))


def test_heldout_set_is_new_wording():
    held = M.heldout_requests()
    assert len(held) >= 40 and len({c for p in held for c in p.commands}) >= 25
    assert len({p.task for p in held}) == len(held)
    train = [t for tt in TASK_TEMPLATES for t in tt.tasks[:-1]]
    assert M.shared_runs([p.task for p in held], train) == {}
    manual_only = [p for p in held if not any(set(c.split('|')) & M.template_commands() for c in p.commands)]
    assert len(manual_only) >= 8


def test_heldout_set_shares_nothing_with_manual_pairs(machine_entries):
    pairs, _ = M.manual_pairs(machine_entries, 3000, seed=0)
    assert M.shared_runs([p.task for p in M.heldout_requests()], [p.task for p in pairs]) == {}


def test_shared_runs_finds_a_copy():
    assert M.shared_runs(['please count the lines of every file now'], ['count the lines of every file']) == \
        {'please count the lines of every file now': [('count', 'the', 'lines', 'of', 'every'), ('the', 'lines', 'of', 'every', 'file')]}
    assert M.shared_runs(['count the lines of each file'], ['count the lines of every file']) == {}


def test_the_baseline_can_lose():
    e = M.parse_manual(M.strip_roff(M.EXAMPLE_PAGE), 'tally', '1')
    ret = M.CommandRetriever([e], templates=[])
    assert ret.commands('count the words of a file') == ('tally',)
    assert ret.commands('ping every server') == ()
    assert M.retrieval_rate(ret, [Pair('ping every server', '', 'x', ('ping',)), Pair('count words', '', 'y', ('tally',))]) == 0.5
    full = M.CommandRetriever([e])                             # templates too: 'count' now also means wc
    assert full.commands('count the lines in every .txt file') == ('wc',)
