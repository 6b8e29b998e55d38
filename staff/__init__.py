"""The staff console: sign-in, payment search, refunds, voids, imports, reconciliation and the settlement feed."""
