"""The request ledger: one relational store of requests, the estimates given for them and their events."""
