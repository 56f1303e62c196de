"""The webhook gateway and offline ingest: real systems' webhooks in, promoter events out."""
