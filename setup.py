"""Build of the optional native part: ``lutkan/runtime_ext/_native.c`` (metadata lives in pyproject.toml).

The C file is a small forwarder that onnxruntime loads with ``register_custom_ops_library``; the op itself
is Numba code (``lutkan.runtime_ext.native``). ``optional=True``: without a C compiler the install still
succeeds and lutkan falls back to the onnxruntime-extensions PyOp (with one warning saying why).
In a source checkout: ``python setup.py build_ext --inplace``.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("lutkan.runtime_ext._native", sources=["lutkan/runtime_ext/_native.c"], optional=True)])
