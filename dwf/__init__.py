"""dwf: generate complete neural-network weights with re-basined flow matching (DeepWeightFlow)."""
from . import (align, archs, bn, columns, conditional, data, evaluate, experiments, export, flow,
               frontier, interpolate, ode, pipeline, plots, rebasin, task, transfer)
from .config import (AlignSpec, ArchSpec, ConditionalExperiment, DataSpec, EvalSpec, Experiment, FlowSpec, PCASpec,
                     SampleSpec, TransferSpec, ZooSpec)
from .errors import ArtifactError, ConfigError, DatasetUnavailable, DwfError
from .layout import ParamLayout
from .pca import DualPCA
from .report import Report
from .zoo import Zoo, train_zoo

__all__ = ["AlignSpec", "ArchSpec", "ArtifactError", "ConditionalExperiment", "ConfigError",
           "DataSpec", "DatasetUnavailable", "DualPCA", "DwfError", "EvalSpec", "Experiment",
           "FlowSpec", "PCASpec", "ParamLayout", "Report", "SampleSpec", "TransferSpec", "Zoo",
           "ZooSpec", "align", "archs", "bn", "columns", "conditional", "data", "evaluate",
           "experiments", "export", "flow", "frontier", "interpolate", "ode", "pipeline", "plots", "rebasin",
           "task", "train_zoo", "transfer"]
