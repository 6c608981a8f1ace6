"""The ``file`` destination: delivered events appended as JSON lines, no credentials needed."""

from destinations.file.client import FileConfig, FileDestination

plugin = FileDestination

__all__ = ["FileConfig", "FileDestination", "plugin"]
