"""The C speedups; everything else about the package is in pyproject.toml.

`optional`: where the extension cannot be built (no C compiler), installing goes on and
Mizu runs in pure Python (mizu_core/speedups.py).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mizu_core._speedups", ["mizu_core/_speedups.c"], optional=True)])
