"""Tasks: losses, scores and behavioural similarity, against scipy and by construction."""
import numpy as np
import torch
from scipy.stats import pearsonr, spearmanr

from dwf.task import Task

REG, CLS = Task("regression"), Task("classification")


def test_spearman_matches_scipy_with_ties():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 6, (200,), generator=g).float()          # many ties
    preds = y + torch.randn(3, 200, generator=g)
    preds[1] = torch.round(preds[1])                               # ties in the predictions too
    ours = REG.score(preds, y)
    for i in range(3):
        assert abs(float(ours[i]) - spearmanr(preds[i].numpy(), y.numpy()).statistic) < 1e-6


def test_accuracy_and_losses():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]])    # (1, 3, 2)
    y = torch.tensor([[0, 0, 0]])
    assert torch.allclose(CLS.score(CLS.predictions(logits), y[0]), torch.tensor([2 / 3]))
    assert CLS.loss(logits, y).shape == (1, 3)
    out = torch.tensor([[[1.0], [2.0]]])
    assert torch.allclose(REG.loss(out, torch.tensor([[0.0, 0.0]])), torch.tensor([[1.0, 4.0]]))


def test_residual_similarity_is_pearson_correlation():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 50, generator=g), torch.randn(3, 50, generator=g)
    sim = REG.similarity(a, b)
    for i in range(2):
        for j in range(3):
            assert abs(float(sim[i, j]) - pearsonr(a[i].numpy(), b[j].numpy()).statistic) < 1e-5
    assert torch.allclose(REG.similarity(a, a).diagonal(), torch.ones(2), atol=1e-6)


def test_error_iou():
    wrong = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    iou = CLS.similarity(wrong, wrong)
    assert np.allclose(iou.numpy(), [[1, 1 / 3, 0], [1 / 3, 1, 0], [0, 0, 1]])


def test_error_similarity_compares_the_mistakes_of_two_sets_of_nets():
    from dwf.evaluate import error_similarity

    y = torch.tensor([0, 1, 2, 3])
    nets = torch.tensor([[9, 9, 2, 3], [0, 9, 9, 3]])        # wrong on {0, 1} and {1, 2}
    ref = torch.tensor([[9, 9, 2, 3], [0, 1, 2, 3]])         # {0, 1} and nothing wrong
    assert np.allclose(error_similarity(nets, ref, y).numpy(), [[1, 0], [1 / 3, 0]])
    resid = torch.tensor([[1.0, 2.0, 3.0, 5.0]])
    assert np.isclose(float(error_similarity(resid, resid, torch.zeros(4), REG)), 1.0)


def test_diversity_is_the_mean_pairwise_disagreement():
    y = torch.tensor([0, 1, 2, 3])
    same = torch.tensor([[0, 1, 2, 0]] * 3)
    assert CLS.diversity(same, y) == 0.0                      # one function repeated
    nets = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 0], [1, 1, 0, 0]])
    # pairs: (0,1) differ on 1 of 4, (0,2) on 3, (1,2) on 2 -> mean 6 / 12
    assert np.isclose(CLS.diversity(nets, y), 0.5)
    resid = torch.tensor([[1.0, 2.0, 3.0, 5.0], [1.0, 2.0, 3.0, 5.0]])
    assert np.isclose(REG.diversity(resid, torch.zeros(4)), 0.0, atol=1e-6)
    anti = torch.tensor([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    assert np.isclose(REG.diversity(anti, torch.zeros(4)), 2.0)   # 1 - (-1)
