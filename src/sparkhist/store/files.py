"""The store's atomic-write steps: those of :mod:`sparkhist.files`, under the store's name."""

from __future__ import annotations

from sparkhist.files import fsync_dir, unlink_quietly, write_file_atomically

__all__ = ["fsync_dir", "unlink_quietly", "write_file_atomically"]
