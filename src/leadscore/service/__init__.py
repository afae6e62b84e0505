"""The scoring service: REST API, Segment-compatible tracking, webhooks, scheduler."""
