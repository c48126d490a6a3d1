"""Every module of the product imports on its own, whatever was imported before it.

``import training.commands.experiments`` (before ``training.cli``) failed with a circular ImportError:
it imports ``training.cli``, which registers every command module, and ``compare`` imported a constant
back from the half-initialised ``experiments``. Nothing broke while every caller went through the CLI
first; a script or notebook importing the module did. Each module is imported here with every product
module dropped from ``sys.modules`` first (third-party packages stay loaded, so this takes seconds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("training", "features", "models", "serving")

_SCRIPT = """
import importlib, pkgutil, sys, traceback
packages = sys.argv[1:]
names = []
for pkg in packages:
    mod = importlib.import_module(pkg)
    names.append(pkg)
    names += [m.name for m in pkgutil.walk_packages(mod.__path__, pkg + ".")]
bad = []
for name in names:
    for loaded in [m for m in sys.modules if m.split(".")[0] in packages]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as err:
        bad.append(f"{name}: {type(err).__name__}: {err}")
print(len(names))
print("\\n".join(bad))
"""


def test_every_product_module_imports_on_its_own():
    out = subprocess.run([sys.executable, "-c", _SCRIPT, *PACKAGES], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    count, *bad = out.stdout.splitlines()
    assert int(count) > 150  # the walk found the modules (157 when written)
    assert [b for b in bad if b] == []
