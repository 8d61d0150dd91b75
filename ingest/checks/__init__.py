"""Checking raw reading batches against the contract, the time bounds and the registry."""
