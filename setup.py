"""Builds chatgui's native kernels (chatgui/engine/native/cgkernels.c) as an optional extension:
where there is no C compiler (or the build fails) the install still succeeds and the engine
uses its PyTorch kernels. Everything else is in pyproject.toml. The library is plain C loaded
with ctypes: no Python, torch or numpy headers are needed to build it."""
import sys

from setuptools import Extension, setup

extra = [] if sys.platform == "win32" else ["-O3", "-std=gnu11"]
setup(ext_modules=[Extension(
    "chatgui.engine.native._cgkernels",
    sources=["chatgui/engine/native/cgkernels.c"],
    depends=["chatgui/engine/native/cg_common.h", "chatgui/engine/native/cg_portable.inc",
             "chatgui/engine/native/cg_x86.inc", "chatgui/engine/native/cg_attend.inc"],
    extra_compile_args=extra,
    libraries=[] if sys.platform == "win32" else ["pthread", "m"],
    optional=True,
)])
