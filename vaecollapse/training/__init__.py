"""The training layer: the trainer of one run, R stacked runs trained as one, the optimisers
chosen by name, and the diagnosis of a trained run directory. Built on the core only."""
