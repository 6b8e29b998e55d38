"""Staff console (see the staff issue)."""
