"""Shared test helpers: a project builder and a concurrent load runner (real files, threads)."""
