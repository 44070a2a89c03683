"""From measurements to mix moves: roles, source groups, the predicted mix, the objective and its
optimiser, the reference comparison and the plan (docs/suggestions.md).  Pure."""
