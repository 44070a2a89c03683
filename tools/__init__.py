"""Developer tools that are not part of the installed package (test material, training data)."""
