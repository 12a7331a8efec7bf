"""Doors from the tools users already train with (Lightning) into the monitor and the
diagnosis; each needs its extra."""
