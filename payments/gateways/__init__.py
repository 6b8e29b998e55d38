"""Payment gateway adapters (see the payments issue)."""
