"""The core layer: data, models, objectives, the latent-model protocol, the linear theory, the
diagnostics with the adapters for users' models and the monitor, the remedies' formulas, and the
plumbing they share (errors, settings, files, run directories, HTML pages). Imports nothing
above it."""
