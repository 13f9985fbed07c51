"""The top app: what spans the others. Founding a tenant (its starter actions and flows), the demo
data, and the pages that read several apps at once (the audit log with its executions, the
timeline). Every other app sits below it, so it may import any of them."""
