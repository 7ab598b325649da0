"""Generated BERTs leave dwf as Hugging Face folders that transformers loads on its own."""
from dataclasses import replace

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


def test_bert_on_the_lexicon_vocabulary_exports_its_own_tokenizer(tmp_path):
    from transformers import AutoTokenizer
    from dwf.data import vader_tokenizer
    tok = vader_tokenizer("lexicon")
    arch = ArchSpec("bert", 0, (24,), 1, depth=1, heads=3, vocab=len(tok), max_len=12)
    model = archs.build(arch, seed=0).eval()
    out = save_bert(arch, model.state_dict(), tmp_path / "bert", tokenizer=tok)
    again = AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    assert len(again) == len(tok) < 5000
    ids = again(["good", "dreadful"], padding=True, return_tensors="pt")["input_ids"]
    assert ids.max() < arch.vocab
    with torch.no_grad():
        assert torch.allclose(load_bert(out)(ids), model(ids), atol=1e-6)
    with pytest.raises(ConfigError, match="tokenizer has"):
        save_bert(replace(arch, vocab=100), archs.build(replace(arch, vocab=100)).state_dict(),
                  tmp_path / "z", tokenizer=tok)


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


def test_load_bert_refuses_a_pickle_weight_file(tmp_path):
    """A folder whose weights are a pickle (pytorch_model.bin) is refused before anything reads
    it: unpickling can run code, and dwf reads safetensors only."""
    from dwf import ArtifactError
    out = save_bert(TINY, archs.build(TINY, seed=3).state_dict(), tmp_path / "bert")
    (out / "model.safetensors").rename(out / "pytorch_model.bin")
    with pytest.raises(ArtifactError, match="pytorch_model.bin but no model.safetensors"):
        load_bert(out)
