"""The web platform under every app: HTTP helpers, middleware, the secret box, row inserts, JSON
text handling, rate-limit counters and the API's error, paging and value types. Imports no app."""
