"""DEBD loader: any folder in the format, clear errors with file and line."""

import numpy as np
import pytest

from jaxml.data import DataFormatError, DataNotFoundError, data_required, data_root
from jaxml.data.debd import load_debd, parse_debd_file


def _write_set(folder, name, rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows or {"train": ["0,1,1", "1,0,0"], "valid": ["1,1,1"], "test": ["0,0,0", "0,1,0"]}
    for split, lines in rows.items():
        (folder / f"{name}.{split}.data").write_text("\n".join(lines) + "\n")
    return folder


def test_loads_any_folder_in_the_format(tmp_path):
    folder = _write_set(tmp_path / "toy", "toy")
    data = load_debd(folder)
    assert data.name == "toy"
    np.testing.assert_array_equal(data.train, [[0, 1, 1], [1, 0, 0]])
    assert data.valid.shape == (1, 3) and data.test.shape == (2, 3)
    assert data.train.dtype == np.uint8
    # and by name under a data root
    _write_set(tmp_path / "root" / "debd" / "toy", "toy")
    assert load_debd("toy", root=tmp_path / "root").test.shape == (2, 3)


def test_ragged_row_names_file_and_line(tmp_path):
    f = tmp_path / "bad.data"
    f.write_text("0,1,1\n1,0,0\n1,0\n")
    with pytest.raises(DataFormatError, match=r"bad\.data:3: row has 2 values, expected 3"):
        parse_debd_file(f)


def test_non_binary_value_names_file_and_line(tmp_path):
    f = tmp_path / "bad.data"
    f.write_text("0,1,1\n1,2,0\n")
    with pytest.raises(DataFormatError, match=r"bad\.data:2: value 2 is not 0 or 1"):
        parse_debd_file(f)
    f.write_text("0,1,1\n1,x,0\n")
    with pytest.raises(DataFormatError, match=r"bad\.data:2: value 'x' is not 0 or 1"):
        parse_debd_file(f)


def test_split_width_mismatch_is_reported(tmp_path):
    folder = _write_set(tmp_path / "toy", "toy",
                        {"train": ["0,1,1"], "valid": ["1,1"], "test": ["0,0,0"]})
    with pytest.raises(DataFormatError, match=r"toy\.valid\.data:1"):
        load_debd(folder)


def test_missing_files_name_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXML_OFFLINE", "1")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "half.train.data").write_text("0,1\n")
    with pytest.raises(DataNotFoundError, match="half.valid.data"):
        load_debd(tmp_path / "half")
    with pytest.raises(DataNotFoundError, match="debd/nltcs/nltcs.train.data"):
        load_debd("nltcs", root=tmp_path)


def test_shared_sets_load_with_their_checksums():
    root = data_root()
    if not (root / "debd" / "nltcs").is_dir():
        if data_required():
            pytest.fail(f"JAXML_REQUIRE_DATA=1 but {root}/debd/nltcs is missing")
        pytest.skip("DEBD data not available (set JAXML_DATA)")
    data = load_debd("nltcs")
    assert data.train.shape == (16181, 16)
    assert data.valid.shape == (2157, 16) and data.test.shape == (3236, 16)
    assert set(np.unique(data.train)) == {0, 1}
