"""Log sources: one small interface over local disk, HDFS, WebHDFS and S3."""

from sparkhist.source.base import ByteStream, FileEntry, Source, SourceHealth
from sparkhist.source.factory import open_source

__all__ = ["ByteStream", "FileEntry", "Source", "SourceHealth", "open_source"]
