"""Studies built on training: sweeps over settings, phase diagrams, the remedy bench, sweeps
on a Ray cluster, and the demo."""
