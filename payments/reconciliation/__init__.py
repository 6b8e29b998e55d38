"""Daily reconciliation: what the ledger says was paid against what the gateway says it took.

``fetch`` copies the gateway's side into ``gateway_records``; ``lines`` matches
and classifies every charge and refund of a window in SQL; ``report`` sums a
date range up for the console; ``export`` streams every line as CSV.
"""
