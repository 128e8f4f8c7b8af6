"""Study tasks; each module follows the contract in :mod:`digitlab.study.task`."""
