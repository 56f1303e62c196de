"""Git write-back: file updaters, cached working clones, and PR providers."""
