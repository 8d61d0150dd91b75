"""The completeness ledger: gateway sequence numbers, gaps and figures per plant."""
