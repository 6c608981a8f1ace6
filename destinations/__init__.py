"""Built-in destinations, each loaded through the ``tagless.destinations`` entry-point group."""
