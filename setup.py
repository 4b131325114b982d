"""Builds the optional C accelerator of ``mirror sync`` (src/ipmirror/mirror/_scan.c); all other
metadata is in pyproject.toml. Without a C compiler the build goes on and the pure-Python path is
used (the same results, slower on large trees)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ipmirror.mirror._scan", ["src/ipmirror/mirror/_scan.c"], optional=True)])
