"""PR providers behind one small Protocol: the local provider (KV + git) and, later, GitHub."""
