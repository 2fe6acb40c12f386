"""Models: `MMoEExModel`, its baselines, `GroupedModel`, input and label checks."""
