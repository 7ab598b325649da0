"""Permutation symmetry: specs, random permutations, and alignment to a reference."""
from .matching import align_to, weight_matching
from .spec import (PermutationSpec, apply_perms, identity_perms, mlp_spec, random_perms,
                   resnet_spec)
from .trace import spec_from_module
from .transformer import (AttentionBlock, Rows, TransformerPerms, TransformerSpec,
                          apply_transformer_perms, bert_spec, random_transformer_perms, vit_spec)
from .transfusion import align_transformer, transfusion

__all__ = ["AttentionBlock", "PermutationSpec", "Rows", "TransformerPerms", "TransformerSpec",
           "align_to", "align_transformer", "apply_perms", "apply_transformer_perms", "bert_spec",
           "identity_perms", "mlp_spec", "random_perms", "random_transformer_perms", "resnet_spec",
           "spec_from_module", "transfusion", "vit_spec", "weight_matching"]
