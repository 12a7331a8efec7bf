"""The training layer: the one training loop (``loop``) over one run (``trainer``) or R runs
stacked into one model (``batched``), ``train_many`` that every study trains through (``many``),
the training settings, the optimizers chosen by name, and the diagnosis of a trained run
directory. Built on the core only."""
