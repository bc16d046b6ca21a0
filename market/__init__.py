"""Chain access, actors, lifecycle flows, simulation and the `aigc-market` command."""
