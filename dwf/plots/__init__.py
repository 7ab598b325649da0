"""Plotly figure builders: data in, Figure out. No computation beyond arranging what is given."""
from .frontier import frontier, frontier_by_size, generators, leading_codes, reach_scaling, refit_rounds
from .populations import (accuracy_distributions, error_similarity_accuracy, error_similarity_heatmap,
                          nn_distance_histogram, novelty_per_net, novelty_scatter, score_histograms,
                          spread_novelty, zoo_accuracy_histogram)
from .stages import (alignment_distances, flow_alignment, flow_loss, flow_trajectories, image_grid,
                     interpolation_barrier, interpolation_scores, latent_scatter, pca_spectrum,
                     stage_timings, transfer_curves)
from .style import population_colors

__all__ = ["accuracy_distributions", "alignment_distances", "error_similarity_accuracy",
           "error_similarity_heatmap", "flow_alignment", "flow_loss", "flow_trajectories", "frontier",
           "frontier_by_size", "generators", "leading_codes", "image_grid", "interpolation_barrier", "interpolation_scores",
           "latent_scatter", "nn_distance_histogram", "novelty_per_net", "novelty_scatter",
           "pca_spectrum", "population_colors", "reach_scaling", "refit_rounds", "score_histograms", "spread_novelty",
           "stage_timings", "transfer_curves", "zoo_accuracy_histogram"]
