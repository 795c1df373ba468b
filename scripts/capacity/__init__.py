"""Capacity planning and simulation: the shape and month to plan (plan, bill), a day replayed on
the synthesized templates (simulate, sim/), and the prices they use."""
