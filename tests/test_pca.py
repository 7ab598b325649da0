import numpy as np
import pytest
import torch

from dwf import ConfigError, DualPCA


def low_rank(n=40, d=3000, r=6, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, r)) * np.geomspace(10, 1, r)) @ rng.normal(size=(r, d))
    return X + 2.0 + 1e-3 * rng.normal(size=(n, d))  # offset: centering must matter


def reference(X, k):
    Xc = X - X.mean(0)
    _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    return Vt[:k], S ** 2 / (S ** 2).sum()


def subspace_error(V1, V2):
    """sin of the largest principal angle between the row spaces of V1 and V2 (orthonormal rows):
    the spectral norm of V1's residual after projecting onto V2 (stable, unlike sqrt(1 - cos^2))."""
    R = V1 - (V1 @ V2.T) @ V2
    return float(np.linalg.norm(R, 2))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_float64_svd(dtype):
    X = low_rank()
    k = 6
    V, ratio = reference(X, k)
    pca = DualPCA(n_components=k, dtype=dtype, chunk=512).fit(X.astype(np.float32 if dtype == torch.float32 else np.float64))
    C = pca.components_.double().numpy()
    assert subspace_error(C, V) <= 1e-5
    assert np.allclose(pca.explained_variance_ratio_.numpy(), ratio[:k], atol=1e-6)
    assert pca.explained_variance_ratio_.sum() <= 1.0 + 1e-6
    assert np.allclose(C @ C.T, np.eye(k), atol=1e-4)


def test_memmap_input_matches_in_memory(tmp_path):
    X = low_rank().astype(np.float32)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    a = DualPCA(n_components=5, chunk=700).fit(mm)
    b = DualPCA(n_components=5).fit(torch.from_numpy(X))
    assert torch.allclose(a.components_, b.components_, atol=1e-5)
    assert torch.allclose(a.mean_, b.mean_, atol=1e-6)


def test_variance_target_and_round_trip():
    X = low_rank(r=6).astype(np.float32)
    pca = DualPCA(variance=0.99).fit(X)
    _, ratio = reference(X.astype(np.float64), 40)
    k_expected = int(np.searchsorted(np.cumsum(ratio), 0.99) + 1)
    assert pca.n_components_ == k_expected
    Z = pca.transform(X)
    X_hat = pca.inverse_transform(Z)
    rel = float((X_hat - torch.from_numpy(X)).norm() / (torch.from_numpy(X) - pca.mean_).norm())
    assert rel ** 2 <= 1 - 0.99 + 1e-3  # the unexplained part of the variance


def test_full_rank_default_is_n_minus_1_and_ratio_is_over_the_trace():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(12, 500)).astype(np.float32)
    pca = DualPCA().fit(X)
    assert pca.n_components_ == 11
    assert abs(float(pca.explained_variance_ratio_.sum()) - 1.0) < 1e-5
    assert DualPCA(n_components=3).fit(X).explained_variance_ratio_.sum() < 0.5


def test_bad_options():
    with pytest.raises(ConfigError):
        DualPCA(n_components=3, variance=0.9)
    with pytest.raises(ConfigError, match="n - 1"):
        DualPCA(n_components=20).fit(np.zeros((10, 5), dtype=np.float32) + np.arange(10)[:, None])


@pytest.mark.parametrize("row, bad", [(0, np.nan), (3, np.inf), (5, -np.inf), (2, np.nan)])
def test_non_finite_weights_anywhere_are_named(row, bad):
    from dwf import DwfError
    X = low_rank().astype(np.float32)
    X[row, 777] = bad
    with pytest.raises(DwfError, match=r"NaN or inf \(columns 768"):
        DualPCA(n_components=3, chunk=256).fit(X)


def _zoo_file(tmp_path, n=7):
    from dwf import ArchSpec, Zoo, archs
    arch = ArchSpec("cnn", 1, (3, 5), 4)
    sds = [archs.build(arch, seed=i).state_dict() for i in range(n)]
    zoo = Zoo(arch, {k: torch.stack([sd[k] for sd in sds]) for k in sds[0]})
    zoo.save(tmp_path)
    return zoo, tmp_path / "weights.safetensors"


def test_stacked_columns_read_any_column_slab_of_a_zoo_file(tmp_path):
    from dwf.columns import StackedColumns
    zoo, path = _zoo_file(tmp_path)
    X, cols = zoo.vectors(), StackedColumns(path, zoo.layout)
    assert cols.shape == tuple(X.shape)
    d = X.shape[1]
    for j0, j1 in [(0, d), (0, 1), (5, 40), (26, 27), (30, 200), (d - 3, d), (7, 7)]:
        assert torch.equal(cols[:, j0:j1], X[:, j0:j1]), (j0, j1)
    assert cols.bytes_read > 0
    with pytest.raises(ConfigError, match="column slabs"):
        cols[0:2, 0:5]


def test_stacked_columns_reject_another_model(tmp_path):
    from dwf import ArchSpec, ArtifactError, ParamLayout, archs
    from dwf.columns import StackedColumns
    _, path = _zoo_file(tmp_path)
    other = ParamLayout.from_module(archs.build(ArchSpec("cnn", 1, (3, 6), 4)))
    with pytest.raises(ArtifactError, match="shape"):
        StackedColumns(path, other)


def test_streamed_fit_and_decode_match_the_in_memory_pca(tmp_path):
    from dwf.columns import StackedColumns
    zoo, path = _zoo_file(tmp_path, n=9)
    X = zoo.vectors()
    full = DualPCA(chunk=64).fit(X)
    cols = StackedColumns(path, zoo.layout)
    lean = DualPCA(chunk=50, keep_components=False).fit(cols)
    assert not hasattr(lean, "components_") and lean.coef_.shape == (8, 9)
    assert torch.allclose(lean.explained_variance_ratio_, full.explained_variance_ratio_, atol=1e-6)
    # training codes from the Gram alone equal projecting the vectors
    assert torch.allclose(lean.train_codes_, full.transform(X), atol=1e-4)
    Z = torch.randn(5, 8, generator=torch.Generator().manual_seed(0)) * full.singular_values_ / 3
    out = np.zeros((5, X.shape[1]), dtype=np.float32)
    lean.inverse_transform_streamed(Z, cols, out=out)
    assert np.allclose(out, full.inverse_transform(Z).numpy(), atol=1e-4)
    with pytest.raises(Exception, match="keep_components=False"):
        lean.inverse_transform(Z)
    with pytest.raises(ConfigError, match="training vectors"):
        lean.inverse_transform_streamed(Z, X[:, :10])
    # saved and loaded, the streamed PCA decodes the same from the zoo file, still without components
    lean.save(tmp_path / "lean.safetensors")
    back = DualPCA.load(tmp_path / "lean.safetensors")
    assert not hasattr(back, "components_") and torch.equal(back.coef_, lean.coef_)
    again = back.inverse_transform_streamed(Z, StackedColumns(path, zoo.layout))
    assert torch.allclose(again, torch.from_numpy(out), atol=1e-6)
    with pytest.raises(Exception, match="keep_components=False"):
        back.transform(X)
    from dwf import ArtifactError
    from dwf.io import load_tensors, save_tensors
    t = load_tensors(tmp_path / "lean.safetensors")
    save_tensors(tmp_path / "broken.safetensors", {k: v for k, v in t.items() if k != "coef"})
    with pytest.raises(ArtifactError, match="lacks.*components"):
        DualPCA.load(tmp_path / "broken.safetensors")


def test_bfloat16_slabs_keep_the_subspace():
    X = low_rank()
    V, _ = reference(X, 6)
    pca = DualPCA(n_components=6, dtype=torch.bfloat16, chunk=512).fit(X.astype(np.float32))
    assert subspace_error(pca.components_.double().numpy(), V) <= 2e-2


def test_stacked_columns_name_a_truncated_file(tmp_path):
    from dwf import ArtifactError
    from dwf.columns import StackedColumns
    zoo, path = _zoo_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-64])
    cols = StackedColumns(path, zoo.layout)
    with pytest.raises(ArtifactError, match="truncated"):
        cols[:, 0:zoo.layout.dim]
    path.write_bytes(b"\x05")
    with pytest.raises(ArtifactError, match="not a readable safetensors"):
        StackedColumns(path, zoo.layout)


@pytest.mark.parametrize("kind", ["torch", "numpy"])
def test_fit_leaves_the_callers_matrix_untouched(kind):
    X = low_rank().astype(np.float32)
    given = torch.from_numpy(X.copy()) if kind == "torch" else X.copy()
    DualPCA(n_components=4, chunk=300).fit(given)
    assert np.array_equal(np.asarray(given), X)


def test_stacked_columns_read_half_precision_zoo_files(tmp_path):
    from dwf.columns import StackedColumns
    from dwf.io import save_tensors
    zoo, _ = _zoo_file(tmp_path)
    for dtype in (torch.float16, torch.bfloat16):
        path = tmp_path / f"{dtype}.safetensors"
        save_tensors(path, {k: v.to(dtype) for k, v in zoo.params.items()})
        cols = StackedColumns(path, zoo.layout)
        assert torch.equal(cols[:, 3:90], zoo.vectors().to(dtype).float()[:, 3:90])
