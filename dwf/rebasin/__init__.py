"""Permutation symmetry: specs, random permutations, and alignment to a reference."""
from .matching import align_to, weight_matching
from .spec import (PermutationSpec, apply_perms, identity_perms, mlp_spec, random_perms,
                   resnet_spec)
from .trace import spec_from_module

__all__ = ["PermutationSpec", "align_to", "apply_perms", "identity_perms", "mlp_spec",
           "random_perms", "resnet_spec", "spec_from_module", "weight_matching"]
