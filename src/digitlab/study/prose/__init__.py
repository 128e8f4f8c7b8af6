"""Sentence templates of the study's tasks: numbers and tables in, strings out (no heavy imports)."""
