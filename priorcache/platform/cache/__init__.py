"""The prior cache: pure core, cluster-wide actor, KL audit."""
