"""Exception families. Each message is one line: the thing, the problem, the fix.

The CLI turns any :class:`DigitlabError` into that line on stderr and exit code 2.
"""


class DigitlabError(Exception):
    """Base class of every error digitlab raises on purpose."""


class DatasetError(DigitlabError):
    """A data file or dataset is missing, corrupt, mismatched or unknown."""


class ConfigError(DigitlabError):
    """A config file, key or value is wrong."""


class ModelError(DigitlabError):
    """An unknown model name or bad model parameter."""
