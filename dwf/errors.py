"""One exception hierarchy: every message says what is wrong and what to do about it."""


class DwfError(Exception):
    """Base class of every error dwf raises on bad input or a missing resource."""


class ConfigError(DwfError):
    """An impossible or unknown option (experiment, profile, solver, component count...)."""


class DatasetUnavailable(DwfError):
    """A dataset is not on disk; the message names the files and how to get them."""


class ArtifactError(DwfError):
    """A saved artifact (zoo, PCA, flow) is missing, truncated, corrupt or inconsistent."""


class Cancelled(DwfError):
    """The caller asked a build to stop; its finished stages and last checkpoint are kept."""


class TestSplitLocked(DwfError):
    """A stage that selects (training, alignment, fitting) asked for the test split."""
    __test__ = False   # not a pytest test class, despite its name
