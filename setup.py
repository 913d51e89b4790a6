"""The optional C extension (camgrid/media/_native.c); everything else is in pyproject.toml.

optional=True: without a compiler or the Python headers the install still succeeds, and
camgrid.media.fastpath runs the pure-Python code instead (it says which).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("camgrid.media._native", ["camgrid/media/_native.c"], optional=True,
              extra_compile_args=["-O2", "-Wall", "-Wno-unused-parameter"]),
])
