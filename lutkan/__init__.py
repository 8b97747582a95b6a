"""lutkan."""
