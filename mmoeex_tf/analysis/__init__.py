"""Analysis of trained models: diversity, grouping, exact scores, plots."""
