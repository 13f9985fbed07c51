"""Command-line tools for the Actions console that talk to its management API over HTTP only.

`actions-console-rollout` (actions_console_cli.rollout) pushes one custom action to many tenants.
Nothing here imports Django: the package runs on a laptop or in CI with httpx alone.
"""
