"""The optional C extensions (camgrid/media/_native.c, camgrid/gb28181/sip/_sipfast.c);
everything else is in pyproject.toml.

optional=True: without a compiler or the Python headers the install still succeeds, and
camgrid.media.fastpath / camgrid.gb28181.sip.fastpath run the pure-Python code instead (they
say which).
"""

from setuptools import Extension, setup

setup(ext_modules=[
    Extension("camgrid.media._native", ["camgrid/media/_native.c"], optional=True,
              extra_compile_args=["-O2", "-Wall", "-Wno-unused-parameter"]),
    Extension("camgrid.gb28181.sip._sipfast", ["camgrid/gb28181/sip/_sipfast.c", "camgrid/gb28181/sip/sipfast_hash.c"], optional=True,
              extra_compile_args=["-O2", "-Wall", "-Wno-unused-parameter"]),
])
