"""jaxml.data.text_classification: SST-2 and Yelp loaders on the real files, format errors."""

import numpy as np
import pytest

from jaxml.data import DataFormatError, DataNotFoundError, data_required, data_root
from jaxml.data.text_classification import load_sst2, load_yelp, subsample


def _need(relpath):
    if not (data_root() / relpath).is_file():
        if data_required():
            pytest.fail(f"missing {data_root() / relpath} with JAXML_REQUIRE_DATA=1")
        pytest.skip(f"{relpath} not under JAXML_DATA")


def test_real_files():
    _need("sst2/dev.tsv")
    _need("yelp-sentences/yelp_labelled.txt")
    dev = load_sst2("dev")
    assert len(dev) == 872 and set(np.unique(dev.labels)) == {0, 1}
    assert dev.texts[0] == "one long string of cliches ."
    yelp = load_yelp()
    assert len(yelp) == 1000 and int(yelp.labels.sum()) == 500
    assert yelp.texts[0] == "Wow... Loved this place." and yelp.labels[0] == 1
    sub = subsample(yelp, 11, seed=0)
    assert len(sub) == 11 and abs(int(sub.labels.sum()) - 5.5) <= 0.5
    assert subsample(yelp, 11, seed=0).texts == sub.texts


def test_bad_rows_and_missing(tmp_path):
    (tmp_path / "sst2").mkdir()
    (tmp_path / "sst2" / "dev.tsv").write_text("label\tsentence\n1\tgood\n7\tbad label\n")
    with pytest.raises(DataFormatError, match=r"dev.tsv, line 3"):
        load_sst2("dev", root=tmp_path, verify=False)
    with pytest.raises(DataNotFoundError, match="yelp_labelled.txt"):
        load_yelp(root=tmp_path)
    with pytest.raises(ValueError, match="unknown SST-2 split"):
        load_sst2("validation", root=tmp_path)
