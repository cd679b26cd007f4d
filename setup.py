"""The C speedups; everything else about the package is in pyproject.toml.

One extension, `mizu_core._speedups`, built from the C files of mizu_core/_native/ (one
concern a file: module.c lists them). `optional`: where it cannot be built (no C compiler),
installing goes on and Mizu runs in pure Python (mizu_core/speedups.py).
"""

from glob import glob

from setuptools import Extension, setup

NATIVE = "mizu_core/_native"

setup(ext_modules=[Extension(
    "mizu_core._speedups", sorted(glob(f"{NATIVE}/*.c")), depends=sorted(glob(f"{NATIVE}/*.h")),
    optional=True,
)])
