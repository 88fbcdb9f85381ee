"""Shared fixtures: synthetic study rows (no ties), stores on both backends (the model: tests/conftest.py).
"""
from __future__ import annotations

import shutil

import pytest

from tests.helpers.search_helpers import aligned_rows, make_rows


@pytest.fixture
def rows():
    return make_rows()


def _memory_store(rows):
    from qdrant_client import QdrantClient

    from cmr_search.search import Store
    store = Store.open(client=QdrantClient(":memory:"), dim=32)
    store.upsert_studies(rows)
    return store


@pytest.fixture(scope="session")
def edge_template(tmp_path_factory):
    """A closed embedded index of make_rows(), built once (creating a shard and its payload indexes costs
    seconds of fsync); tests copy it."""
    from cmr_search.search import Store
    data = tmp_path_factory.mktemp("edge-template")
    with Store.open(data, dim=32) as s:
        s.upsert_studies(make_rows())
    return data


def _copy_open(template, dest):
    from cmr_search.search import Store
    shutil.copytree(template, dest)
    return Store.open(dest)


@pytest.fixture
def edge_store(tmp_path, edge_template):
    store = _copy_open(edge_template, tmp_path / "data")
    yield store
    store.close()


@pytest.fixture
def memory_store(rows):
    store = _memory_store(rows)
    yield store
    store.close()


@pytest.fixture(scope="module")
def edge_ro(tmp_path_factory, edge_template):
    """Read-only stores shared by a module (congruence queries)."""
    store = _copy_open(edge_template, tmp_path_factory.mktemp("edge-ro") / "data")
    yield store
    store.close()


@pytest.fixture(scope="module")
def memory_ro():
    store = _memory_store(make_rows())
    yield store
    store.close()


@pytest.fixture(params=["embedded", "memory"])
def any_store(request):
    return request.getfixturevalue("edge_store" if request.param == "embedded" else "memory_store")


@pytest.fixture(scope="session")
def aligned_template(tmp_path_factory, tiny_model):
    from cmr_search.search import Store
    data = tmp_path_factory.mktemp("aligned-template")
    with Store.open(data, dim=tiny_model.embed_dim) as s:
        s.upsert_studies(aligned_rows(tiny_model))
    return data


@pytest.fixture
def aligned_client(tmp_path, aligned_template, tiny_model):
    from cmr_search.search import connect
    shutil.copytree(aligned_template, tmp_path / "data")
    client = connect(tmp_path / "data", model=tiny_model)
    yield client
    client.close()
