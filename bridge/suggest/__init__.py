"""From measurements to mix moves: roles, rules, the reference comparison and the plan.  Pure."""
