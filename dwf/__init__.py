"""dwf: generate complete neural-network weights with re-basined flow matching (DeepWeightFlow)."""
try:
    from importlib.metadata import version as _version
    __version__ = _version("dwf")
except Exception:   # not installed (a bare checkout on sys.path)
    __version__ = "0+unknown"

# modules below read __version__ (artifact records), so it is set first
from . import (align, archs, bn, cache, columns, conditional, data, dominance, evaluate, experiments, export,
               families, figures, flow, frontier, interpolate, novelty, ode, pipeline, plots, progress, published,
               reach, readme, rebasin, recipe, replicas, reporting, reproduce, sample, scaling, tables, task, transfer)
from .config import (AlignSpec, ArchSpec, ConditionalExperiment, DataSpec, EvalSpec, Experiment, FlowSpec, PCASpec,
                     PopulationSpec, SampleSpec, TransferSpec, ZooSpec)
from .errors import ArtifactError, Cancelled, ConfigError, DatasetUnavailable, DwfError, TestSplitLocked
from .interval import Interval
from .layout import ParamLayout
from .pca import DualPCA
from .report import Report
from .sample import Generated, generate
from .zoo import Zoo, train_zoo

__all__ = ["AlignSpec", "ArchSpec", "ArtifactError", "Cancelled", "ConditionalExperiment", "ConfigError",
           "DataSpec", "DatasetUnavailable", "DualPCA", "DwfError", "EvalSpec", "Experiment",
           "FlowSpec", "Generated", "Interval", "PCASpec", "ParamLayout", "PopulationSpec", "Report",
           "SampleSpec", "TestSplitLocked", "TransferSpec", "Zoo", "ZooSpec", "align", "archs", "bn",
           "cache", "columns", "conditional", "data", "dominance", "evaluate", "experiments", "export", "families", "figures",
           "flow", "frontier", "generate", "interpolate", "novelty", "ode", "pipeline", "plots",
           "progress", "published", "reach", "readme", "rebasin", "recipe", "replicas", "reporting", "reproduce", "sample", "scaling", "tables",
           "task", "train_zoo", "transfer"]
