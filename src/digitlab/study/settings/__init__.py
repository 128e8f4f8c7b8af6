"""Each task's settings: its ``Config`` dataclass (the config section, with types, ranges and
``validate()``), kept apart from the task's adapter code in ``study/tasks``."""
