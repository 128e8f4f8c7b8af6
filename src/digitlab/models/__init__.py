"""The models: the zoo's registry (:mod:`.zoo`) with the classic models (:mod:`.classic`) loaded into it."""

from digitlab.models import classic  # noqa: F401 - registers the classic models in the zoo
