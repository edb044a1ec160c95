"""mann-lightning."""
