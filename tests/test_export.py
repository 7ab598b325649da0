"""Generated BERTs leave dwf as Hugging Face folders that transformers loads on its own."""
import pytest
import torch

from dwf import ArchSpec, ConfigError, archs
from dwf.export import load_bert, save_bert

TINY = ArchSpec("bert", 0, (24,), 1, depth=2, heads=3, vocab=30522, max_len=12)


def test_saved_bert_reloads_with_transformers_and_dwf(tmp_path):
    from transformers import AutoTokenizer, BertModel
    model = archs.build(TINY, seed=3).eval()
    out = save_bert(TINY, model.state_dict(), tmp_path / "bert")
    ids = torch.tensor([[101, 2204, 102, 0], [101, 6659, 2154, 102]])
    mask = (ids != 0).long()
    encoder = BertModel.from_pretrained(str(out), local_files_only=True).eval()
    with torch.no_grad():
        ours = model.bert(input_ids=ids, attention_mask=mask).pooler_output
        theirs = encoder(input_ids=ids, attention_mask=mask).pooler_output
        assert torch.allclose(ours, theirs, atol=1e-6)
        assert torch.allclose(load_bert(out)(ids), model(ids), atol=1e-6)
    tok = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert tok("good")["input_ids"] == [101, 2204, 102]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no scratch left


def test_export_errors(tmp_path):
    with pytest.raises(ConfigError, match="bert regressors"):
        save_bert(ArchSpec("mlp", 4, (5,), 3), {}, tmp_path / "x")
    from dwf import ArtifactError
    with pytest.raises(ArtifactError, match="not a dwf BERT export"):
        load_bert(tmp_path)
    partial = {k: v for k, v in archs.build(TINY).state_dict().items() if "layer.1." not in k}
    with pytest.raises(ArtifactError, match="missing"):
        save_bert(TINY, partial, tmp_path / "y")
    assert not (tmp_path / "y").exists()
