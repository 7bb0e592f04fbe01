"""Loaders for real data files in their standard formats, data-root resolution and checksummed
downloads (see :mod:`jaxml.data.core` for the contract)."""

from jaxml.data.core import (
    DataFormatError,
    DataNotFoundError,
    data_required,
    data_root,
    download,
    require_file,
    sha256sum,
)
from jaxml.data.text import TINYSHAKESPEARE, char_vocab, encode_chars, load_tinyshakespeare

__all__ = [
    "DataFormatError", "DataNotFoundError", "data_required", "data_root", "download", "require_file",
    "sha256sum", "TINYSHAKESPEARE", "char_vocab", "encode_chars", "load_tinyshakespeare",
]
