"""Everything a training step touches: losses, metrics, optimization."""
