"""Datasets: splits carved from training data, resizing, and the smoke profiles' test subsets."""
import pytest
import torch

from dwf import ConfigError, DataSpec, DatasetUnavailable, FlowSpec, TestSplitLocked, data, flow


def test_digits_resized_to_28_keep_their_splits_and_labels():
    small, big = (data.load(DataSpec("digits", resize=r)).for_reporting() for r in (None, 28))
    assert small.x_train.shape[1:] == (1, 8, 8) and big.x_train.shape[1:] == (1, 28, 28)
    assert torch.equal(small.y_train, big.y_train) and torch.equal(small.y_test, big.y_test)
    # standardized with training statistics after resizing
    assert abs(float(big.x_train.mean())) < 1e-4 and abs(float(big.x_train.std()) - 1) < 0.05
    # the upsampled image still looks like the original (correlation of the two, downsampled)
    down = torch.nn.functional.interpolate(big.x_train[:50], size=(8, 8), mode="area")
    a, b = down.flatten(), small.x_train[:50].flatten()
    assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9


def test_resize_needs_images():
    with pytest.raises(ConfigError, match="resize"):
        data.load(DataSpec("iris", resize=28))


def test_test_limit_is_a_fixed_subset_of_the_test_split():
    full = data.load(DataSpec("digits")).for_reporting()
    a = data.load(DataSpec("digits", test_limit=100)).for_reporting()
    b = data.load(DataSpec("digits", test_limit=100, seed=3)).for_reporting()
    assert len(a.y_test) == 100 and torch.equal(a.y_test, b.y_test)   # independent of the split seed
    rows = {tuple(r.tolist()) for r in full.x_test.flatten(1)}
    assert all(tuple(r.tolist()) in rows for r in a.x_test.flatten(1))
    assert torch.equal(a.x_train, full.x_train)


def test_val_limit_keeps_a_seeded_part_of_the_same_validation_carve():
    full = data.load(DataSpec("digits"))
    a = data.load(DataSpec("digits", val_limit=50))
    assert len(a.y_val) == 50 and torch.equal(a.x_val, full.x_val[:50]) and torch.equal(a.y_val, full.y_val[:50])
    assert torch.equal(a.x_train, full.x_train)       # the training split is untouched
    for bad in (dict(val_limit=0), dict(train_limit=-1), dict(test_limit=0)):
        with pytest.raises(ConfigError, match=f"{next(iter(bad))} must be None"):
            data.load(DataSpec("digits", **bad))


def test_vader_lexicon_is_split_by_token_into_a_regression_task():
    tokens, valence = data.vader_lexicon()
    assert len(tokens) > 7000 and valence.min() >= -4 and valence.max() <= 4
    assert dict(zip(tokens, valence.tolist()))["good"] > 1.5 > -1.5 > dict(zip(tokens, valence.tolist()))["bad"]
    ds = data.load(DataSpec("vader")).for_reporting()
    assert ds.n_classes == 0 and ds.y_train.dtype == torch.float32 and ds.x_train.dtype == torch.int64
    n = len(ds.y_train) + len(ds.y_val) + len(ds.y_test)
    assert n == len(tokens) and abs(len(ds.y_test) - 0.15 * n) <= 1
    # every row is [CLS] ... [SEP] then padding; no token's ids appear in two splits as a whole row
    assert bool((ds.x_train[:, 0] == 101).all())
    rows = [{tuple(r.tolist()) for r in x} for x in (ds.x_train, ds.x_val, ds.x_test)]
    assert len(rows[2] & rows[0]) < 0.01 * len(rows[2])   # only distinct tokens sharing word pieces
    again = data.load(DataSpec("vader", seed=1)).for_reporting()
    assert torch.equal(again.y_test, ds.y_test) and not torch.equal(again.y_val, ds.y_val)


def test_lexicon_vocabulary_splits_every_token_as_minilm_does_with_4k_ids():
    full, lex = data.vader_tokenizer("minilm"), data.vader_tokenizer("lexicon")
    assert len(lex) < 5000 < len(full) and lex.pad_token_id == 0
    a, b = (data.load(DataSpec("vader", vocab=v)).for_reporting() for v in ("minilm", "lexicon"))
    assert torch.equal(a.y_train, b.y_train) and b.x_train.max() < len(lex)
    # the same word pieces, renumbered
    for x, y in zip(a.x_test[:200], b.x_test[:200]):
        assert full.convert_ids_to_tokens(x.tolist()) == lex.convert_ids_to_tokens(y.tolist())
    with pytest.raises(ConfigError, match="unknown vocabulary"):
        data.vader_tokenizer("bytes")


def test_the_test_split_is_locked_until_the_report_stage():
    """Structural: a loaded dataset refuses its test split, so zoo training, alignment, PCA and
    flow fitting (everything that selects) cannot read it; `for_reporting` unlocks a copy."""
    ds = data.load(DataSpec("digits"))
    for read in (lambda: ds.x_test, lambda: ds.y_test, lambda: ds.split("test")):
        with pytest.raises(TestSplitLocked, match="only the report stage"):
            read()
    shown = ds.for_reporting()
    assert shown.x_test.shape[0] == shown.y_test.shape[0] > 0
    assert shown.x_train is ds.x_train and ds.test_unlocked is False   # a view, the original stays locked


def test_a_selection_step_that_reaches_for_the_test_split_fails():
    """A selection rule written against the test split (here: pick the source std by test
    accuracy) fails on the dataset every fitting stage receives."""
    ds = data.load(DataSpec("iris", val_fraction=0.2))
    codes = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    f = flow.fit(codes, FlowSpec(steps=5, eval_every=5), progress=False)   # fitting never needs test
    assert f.dim == 3

    def pick_by_test_accuracy(candidates):
        return max(candidates, key=lambda c: float((ds.y_test == c).float().mean()))

    with pytest.raises(TestSplitLocked):
        pick_by_test_accuracy([0, 1, 2])


def test_unavailable_names_missing_data_without_loading_it(monkeypatch, tmp_path):
    data_mod = data
    assert data_mod.unavailable(DataSpec("digits")) is None and data_mod.unavailable(DataSpec("vader")) is None
    assert data_mod.unavailable(DataSpec("fmnist")) is None            # the Debian package is installed
    monkeypatch.setattr(data_mod, "TORCHVISION_ROOT", tmp_path)
    why = data_mod.unavailable(DataSpec("cifar10"))
    assert why and "cifar10" in why and "download=True" not in why
    with pytest.raises(DatasetUnavailable) as e:                       # loading says the same, no torchvision advice
        data_mod.load(DataSpec("cifar10"))
    assert str(e.value) == why
    monkeypatch.setattr(data_mod, "FMNIST_DIR", tmp_path)
    assert "dataset-fashion-mnist" in data_mod.unavailable(DataSpec("fmnist"))
