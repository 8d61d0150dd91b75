"""Checking raw reading batches against the contract, the time bounds and the registry, in
three tiers named by what they accept (clean, conforming, partial); ingest.checks.checker
runs them."""
