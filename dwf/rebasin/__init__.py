"""Permutation symmetry: specs, random permutations, and alignment to a reference."""
from .matching import align_to, weight_matching
from .spec import PermutationSpec, apply_perms, identity_perms, mlp_spec, random_perms

__all__ = ["PermutationSpec", "align_to", "apply_perms", "identity_perms", "mlp_spec",
           "random_perms", "weight_matching"]
