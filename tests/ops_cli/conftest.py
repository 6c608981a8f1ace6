"""Fixtures of the CLI operations' tests (the kit itself is cli_ops_kit.py)."""

from cli_ops_kit import config_dir

__all__ = ["config_dir"]
