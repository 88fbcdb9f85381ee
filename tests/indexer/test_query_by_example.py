"""indexer.embed_study: a raw DICOM study folder lands where the same study lands after prepare + index."""
import numpy as np
import pytest

from cmr_search.indexer import embed_study
from cmr_search.indexer.query_by_example import ExampleError
from cmr_search.indexer.embedding import embed_batch, study_clips
from cmr_search.indexer.prepare import prepare
from cmr_search.model import create_model
from cmr_search.model.training.data import CacheDataset
from cmr_search.phantom.generate import generate_archive


@pytest.fixture(scope="module")
def one_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("example")
    rec = generate_archive(root / "archive", 1, "tiny", seed=4)[0]
    return root, root / "archive" / rec["folder"]


def test_embed_study_matches_the_indexed_vectors(one_study, tmp_path):
    root, folder = one_study
    model = create_model("cmr-tiny").eval()
    vectors, qa, n = embed_study(folder, model)
    assert n == 1 and {"study", "cine"} <= set(vectors)
    for v in vectors.values():
        assert v.shape == (model.embed_dim,) and abs(np.linalg.norm(v) - 1) < 1e-4
    prepare(str(root / "archive"), None, str(tmp_path / "cache"), salt_file=str(tmp_path / "salt.key"),
            progress=False)
    ds = CacheDataset(tmp_path / "cache", model.clip_spec)
    indexed = embed_batch(model, [study_clips(ds.views(0), model.clip_spec)], [None], model.device)[0]
    for name, v in vectors.items():
        assert float(v @ indexed[name]) > 0.999, name     # cache arrays are float16: near, not bit-equal


def test_embed_study_refuses_a_folder_without_dicom(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ExampleError, match="no DICOM images"):
        embed_study(tmp_path, create_model("cmr-tiny").eval())
