"""Names that do not mislead: no two public things of the package share a name unless they are the same object, and no
module is over about 600 lines of code."""
import importlib, pkgutil
from pathlib import Path
import codellm

LIB = Path(codellm.__file__).parent


def modules():
    "Every module of the package (subpackages included), except the generated index."
    for m in pkgutil.walk_packages(codellm.__path__, 'codellm.'):
        if not m.name.endswith(('_modidx', '__main__')): yield importlib.import_module(m.name)


def test_one_thing_per_public_name():
    seen, clashes = {}, []
    for mod in modules():
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name)
            if name in seen and seen[name][1] is not obj: clashes.append(f'{name}: {seen[name][0]} and {mod.__name__}')
            seen.setdefault(name, (mod.__name__, obj))
    assert not clashes, clashes


def test_no_method_in_all():
    "Methods added in a later cell use fastcore's @patch, so they are not module-level names in `__all__`."
    for mod in modules():
        for name in getattr(mod, '__all__', []):
            fn = getattr(mod, name)
            params = getattr(getattr(fn, '__code__', None), 'co_varnames', ())[:1]
            assert not (callable(fn) and params == ('self',) and not isinstance(fn, type)), f'{mod.__name__}.{name}'


def test_modules_are_small():
    "No module over about 600 lines of code (blank lines, comments and docstrings not counted); data lives in resources/."
    def code_lines(path):
        lines = [l.strip() for l in path.read_text().splitlines()]
        return sum(1 for l in lines if l and not l.startswith('#'))
    big = {p.relative_to(LIB).as_posix(): n for p in LIB.rglob('*.py') if p.name != '_modidx.py' and (n := code_lines(p)) > 620}
    assert not big, big
