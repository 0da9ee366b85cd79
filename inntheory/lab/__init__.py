"""The lab around the method: stored results, sweeps, lecture widgets, the command line."""
