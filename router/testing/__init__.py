"""Test kit shipped for plugin authors: fake platform server, event fixtures, contract tests."""
