"""The data map: which systems hold personal data, how to find a subject in them, and what
erasure does to each collection. ``schema`` defines the file format; ``loader`` reads it."""

from dsar.datamap.schema import (
    DataMap,
    ErasureSpec,
    S3ObjectSpec,
    S3SharedSpec,
    S3System,
    SaaSSystem,
    SqlSystem,
    SqlTable,
    System,
)

__all__ = [
    "DataMap",
    "ErasureSpec",
    "S3ObjectSpec",
    "S3SharedSpec",
    "S3System",
    "SaaSSystem",
    "SqlSystem",
    "SqlTable",
    "System",
]
