"""The GitHub PR provider on PyGithub: client (retries, budget), auth, and the provider."""
