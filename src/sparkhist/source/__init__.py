"""Log sources: one small interface over local disk, HDFS, WebHDFS and S3."""

from sparkhist.source.base import FileEntry, Source
from sparkhist.source.factory import open_source

__all__ = ["FileEntry", "Source", "open_source"]
