"""Mirrors: versions of a directory tree, incremental sync, diff, retention."""
