"""The built book (book/_build/html), checked in a real browser: every page of the table of contents opens with its
title, the sidebar and prev/next navigation, every image loads, no widget placeholder or nbdev directive shows,
and every internal link points to a file (and anchor) that exists. Saves book/_build/screenshots/chapter.png.

Build the book first (`codellm book`). Without a built book the tests skip, unless the CI environment variable is set:
then a missing book, browser or driver is a failure. Needs Debian's chromium and chromium-driver and `selenium`;
nothing is downloaded (the driver path is given, so selenium-manager is not used).
"""
import os, re, shutil, tempfile
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / 'book' / '_build'
HTML, SHOTS = BUILD / 'html', BUILD / 'screenshots'
TOC = HTML / '_toc.yml'   # the table of contents the site was built from, copied there by build_book
IN_CI = bool(os.environ.get('CI'))
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--disable-dev-shm-usage', '--window-size=1400,1000']


def need(ok, why):
    "Skip when `ok` is false, or fail when running in CI, where the book must have been built."
    if ok: return
    if IN_CI: pytest.fail(f'{why} (CI is set, so this is a failure)')
    pytest.skip(why)


def toc_pages() -> list[str]:
    "The book's documents in reading order, from the table of contents the build generated."
    import yaml
    toc = yaml.safe_load(TOC.read_text())
    pages = [toc['root']]
    def walk(entries):
        for e in entries:
            pages.append(e['file'])
            walk(e.get('sections', []))
    for part in toc.get('parts', []): walk(part['chapters'])
    return pages


@pytest.fixture(scope='module')
def pages():
    need((HTML / 'index.html').exists() and TOC.exists(), f'no built book at {HTML} (run: codellm book)')
    return toc_pages()


@pytest.fixture(scope='module')
def browser(pages):
    try: from selenium import webdriver
    except ImportError: need(False, 'selenium is not installed (pip install selenium)')
    from selenium.webdriver.chrome.service import Service
    binary = next((shutil.which(b) for b in ('chromium', 'chromium-browser', 'google-chrome') if shutil.which(b)), None)
    driver_path = shutil.which('chromedriver') or ('/usr/bin/chromedriver' if Path('/usr/bin/chromedriver').exists() else None)
    need(binary and driver_path, 'chromium or chromedriver not found (apt-get install chromium chromium-driver)')
    os.environ.setdefault('SE_OFFLINE', 'true')
    opts = webdriver.ChromeOptions()
    opts.binary_location = binary
    profile = tempfile.mkdtemp(prefix='book-test-chromium-')
    for flag in CHROMIUM_FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def url(doc: str) -> str: return (HTML / f'{doc}.html').as_uri()


_PAGE_JS = """
const h1 = document.querySelector('article h1, main h1');
const text = e => e ? e.textContent.replace(/[#¶]\\s*$/, '').trim() : null;
return {
  title: document.title,
  h1: text(h1),
  sidebar: Array.from(document.querySelectorAll('nav.bd-docs-nav a')).map(a => a.href.split('#')[0]),
  prev: (document.querySelector('a.left-prev') || {}).href || null,
  next: (document.querySelector('a.right-next') || {}).href || null,
  broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
  n_images: document.images.length,
  widgets: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"], .jupyter-widgets').length,
  loading_widget: Array.from(document.querySelectorAll('div.cell_output')).some(e => e.innerText.includes('Loading widget')),
  directive_lines: Array.from(document.querySelectorAll('div.cell_input pre, div.cell_input code'))
                        .flatMap(e => e.textContent.split('\\n')).filter(l => /^\\s*#\\|/.test(l)),
};
"""


def test_pages_in_browser(pages, browser):
    "Every page: a title naming the page and the book, the whole TOC in the sidebar, prev/next in TOC order, images loaded."
    import yaml
    book_title = yaml.safe_load((ROOT / 'book' / '_config.yml').read_text())['title']
    expected_sidebar = {url(p) for p in pages[1:]}
    problems, n_images = [], 0
    for i, doc in enumerate(pages):
        browser.get(url(doc))
        info = browser.execute_script(_PAGE_JS)
        n_images += info['n_images']
        def bad(what): problems.append(f'{doc}: {what}')
        if not info['h1']: bad('no h1 heading')
        elif not info['title'].startswith(info['h1'][:40]) or book_title not in info['title']:
            bad(f"title {info['title']!r} does not name the page ({info['h1']!r}) and the book ({book_title!r})")
        if missing := expected_sidebar - set(info['sidebar']): bad(f'sidebar lacks {sorted(missing)}')
        want_prev, want_next = (url(pages[i - 1]) if i else None), (url(pages[i + 1]) if i + 1 < len(pages) else None)
        got_prev, got_next = (u and u.split('#')[0] for u in (info['prev'], info['next']))
        if got_prev != want_prev: bad(f'prev link {got_prev} instead of {want_prev}')
        if got_next != want_next: bad(f'next link {got_next} instead of {want_next}')
        if info['broken_images']: bad(f"images that did not load: {info['broken_images']}")
        if info['widgets'] or info['loading_widget']: bad('a widget (or "Loading widget...") is on the page')
        if info['directive_lines']: bad(f"nbdev directives shown: {info['directive_lines'][:3]}")
    assert not problems, '\n'.join(problems)
    assert len(pages) >= 2


def test_screenshot(pages, browser):
    "A screenshot of the first stage chapter (else the front page), kept as an artifact for a person to look at."
    import yaml
    toc = yaml.safe_load(TOC.read_text())
    stages = [p for p in toc['parts'] if p['caption'] == 'The curriculum']
    doc = stages[0]['chapters'][0]['file'] if stages else pages[0]
    browser.get(url(doc))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / 'chapter.png'
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000   # a blank page compresses to a few hundred bytes


class _Links(HTMLParser):
    "The ids an HTML page defines and the links (href/src) it makes."
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k in ('id', 'name') if tag == 'a' else ('id',):
            if a.get(k): self.ids.add(a[k])
        for k in ('href', 'src'):
            if a.get(k) and tag in ('a', 'img', 'link', 'script', 'source', 'iframe'): self.links.append((tag, a[k]))


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding='utf-8', errors='replace'))
    return p


def test_internal_links(pages):
    "Every internal href/src of every built page points to a file that exists, and to an anchor that exists in it."
    files = [f for f in HTML.rglob('*.html') if '_sources' not in f.parts and '_static' not in f.parts]
    parsed, problems, n = {}, [], 0
    def page(f):
        if f not in parsed: parsed[f] = _parse(f)
        return parsed[f]
    for f in files:
        for tag, link in page(f).links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(('//', 'mailto:', 'javascript:', 'data:')): continue
            target = (f.parent / unquote(parts.path)).resolve() if parts.path else f
            n += 1
            where = f'{f.relative_to(HTML)}: <{tag}> {link}'
            if target.is_dir(): target = target / 'index.html'
            if not target.exists(): problems.append(f'{where}: no such file'); continue
            if parts.fragment and target.suffix == '.html' and unquote(parts.fragment) not in page(target).ids:
                problems.append(f'{where}: no anchor #{parts.fragment}')
    assert n > 0
    assert not problems, '\n'.join(problems[:30])
    for doc in pages: assert (HTML / f'{doc}.html').exists(), f'{doc}.html was not built'
